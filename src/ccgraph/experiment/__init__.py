"""ccgraph.experiment."""
