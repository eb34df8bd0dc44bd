"""ccgraph.evaluate."""
