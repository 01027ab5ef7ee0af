"""Benchmarks: the pipeline (nights), the matching engines (gridlake vs Splink), shared helpers."""
