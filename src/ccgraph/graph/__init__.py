"""The kNN similarity graph: search, mutual rule with repair, weights, fusion, duplicates.

``build_knn_graph`` turns embeddings into a :class:`~ccgraph.containers.KnnGraph`;
``fuse_graphs`` / ``concat_embeddings`` combine modalities; ``find_duplicates`` groups
near-identical items; ``to_igraph`` / ``to_networkx`` are the only converters to graph
libraries. Importing this package loads numpy and scipy only (pynndescent, igraph and
networkx are imported by the functions that use them).
"""

from __future__ import annotations

from ccgraph.graph.build import build_knn_graph
from ccgraph.graph.convert import connected_components, edge_list, to_igraph, to_networkx
from ccgraph.graph.duplicates import DuplicateGroups, find_duplicates
from ccgraph.graph.fusion import concat_embeddings, fuse_graphs
from ccgraph.graph.knn import choose_backend, estimate_recall, knn_search
from ccgraph.graph.weights import edge_weights, gaussian_sigmas, umap_rho_sigma

__all__ = [
    "DuplicateGroups",
    "build_knn_graph",
    "choose_backend",
    "concat_embeddings",
    "connected_components",
    "edge_list",
    "edge_weights",
    "estimate_recall",
    "find_duplicates",
    "fuse_graphs",
    "gaussian_sigmas",
    "knn_search",
    "to_igraph",
    "to_networkx",
    "umap_rho_sigma",
]
