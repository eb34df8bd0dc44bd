"""ccgraph.graph."""
