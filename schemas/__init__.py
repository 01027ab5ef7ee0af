"""Explicit table schemas: nothing in gridlake infers a schema; ID-like columns are strings."""
