"""Stage ``reports``: the district report, the delivery report and the quality report of a night."""
