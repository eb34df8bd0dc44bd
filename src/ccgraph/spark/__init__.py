"""ccgraph.spark."""
