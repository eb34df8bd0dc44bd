"""ccgraph.report."""
