"""ccgraph.query."""
