"""Bronze layer: every delivered row, as strings, append-only, with its provenance."""
