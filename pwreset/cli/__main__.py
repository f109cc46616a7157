"""`python -m pwreset.cli`, as the tests and benchmarks run it."""

import sys

from pwreset.cli import main

sys.exit(main())
