"""ccgraph.io."""
