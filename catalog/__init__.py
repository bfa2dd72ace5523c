"""The DuckDB catalog and everything that reads it."""
