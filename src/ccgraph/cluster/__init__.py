"""ccgraph.cluster."""
