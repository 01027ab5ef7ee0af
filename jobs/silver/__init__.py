"""Silver layer: typed, standardised, validated, deduplicated; quarantine and conservation."""
