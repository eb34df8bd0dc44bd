"""ccgraph.propagate."""
