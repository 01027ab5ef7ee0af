"""Reports rendered from the gold tables: the nightly district report (:mod:`gridlake.report.district`)."""
