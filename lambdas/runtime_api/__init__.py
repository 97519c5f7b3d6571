"""Clients of the Lambda Runtime API: runtime loops a function starts in place of the managed runtime's
bootstrap (through its ``AWS_LAMBDA_EXEC_WRAPPER``), for what the managed runtime cannot do."""
