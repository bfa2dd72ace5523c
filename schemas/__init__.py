"""Message schemas: the .proto files this project owns, their generated code, and the check."""
