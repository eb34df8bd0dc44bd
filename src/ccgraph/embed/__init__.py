"""ccgraph.embed."""
