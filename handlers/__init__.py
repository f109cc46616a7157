"""Request handlers, one module per service and one function per operationId."""
