"""Pure rules of the password-reset flow: no I/O, time and randomness passed in."""
