"""Pure-Python parsers for delivered values: dates and times, numbers with units, vocabularies.

Lenient on form, strict on meaning: each parser returns the value, the *form* it was
written in (a pattern such as ``YYYY年M月D日``, never the value itself) and, when the
value is unusable, a reason code. Nothing here imports Spark; the Spark adapters live in
:mod:`jobs.silver.values`.
"""
