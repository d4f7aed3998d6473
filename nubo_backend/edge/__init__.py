"""The HTTP edge: errors and their replies, input validation, pagination, the client's address."""
