"""Tools that are not the nightly product: the synthetic district generator and simulated officers,
benchmarks, evaluation, the demo and the local standalone cluster."""
