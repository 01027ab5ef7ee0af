"""The data lifecycle (issue 20): maintenance, retention, erasure on request, key rotation, time travel.

- :mod:`gridlake.lifecycle.lake`       what is on disk: tables, files, bytes, commits, manifests, night locks
- :mod:`gridlake.lifecycle.delta_ops`  the Delta maintenance operations (DELETE, UPDATE, OPTIMIZE, VACUUM, log purge)
- :mod:`gridlake.lifecycle.retention`  the retention rules per layer (pure conditions) and the needed versions
- :mod:`gridlake.lifecycle.maintain`   ``gridlake maintain`` and the weekly ``gridlake_maintenance`` DAG
- :mod:`gridlake.lifecycle.erase`      ``gridlake erase``: every row about a person, old versions and log stats included
- :mod:`gridlake.lifecycle.rotate`     ``gridlake rotate-key``: re-key gold, discrepancy ids unchanged
- :mod:`gridlake.lifecycle.asof`       ``gridlake as-of``: gold exactly as a night's manifest recorded it
"""
