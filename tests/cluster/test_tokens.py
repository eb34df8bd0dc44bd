"""The fast tokeniser and term matrix against a plain per-text reference."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.cluster._stopwords import STOP_WORDS
from ccgraph.cluster._tokens import TOKEN, token_codes
from ccgraph.cluster.describe import describe_clusters, describe_partitions, term_matrix
from ccgraph.containers import KnnGraph, Partition, TagSet

_ALPHABET = st.sampled_from(
    [*"abcXYZ  \n,.-_0129'", "é", "Σ", "ß", "İ", "½", "ǅ", "\x1f", "\xa0", "٣"]
)
_TEXTS = st.lists(
    st.one_of(st.none(), st.text(alphabet=_ALPHABET, max_size=40)), min_size=0, max_size=12
)


def _reference(texts: list[str | None]) -> list[tuple[int, str]]:
    """Per text: lower-cased as pandas' string dtype does, split at whitespace, then
    ``re.findall`` per chunk; in a code chunk (a decimal digit after a letter, i.e. an
    alphanumeric character that is not a decimal digit), words of <= 3 letters go."""
    low = pd.Series(list(texts), dtype=object).fillna("").astype(str).str.lower().tolist()
    return [
        (i, w) for i, t in enumerate(low) for chunk in t.split()
        for w in re.findall(TOKEN, chunk)
        if w not in STOP_WORDS
        and not (len(w) <= 3 and _is_code(chunk))
    ]  # fmt: skip


def _is_code(chunk: str) -> bool:
    letters = [i for i, ch in enumerate(chunk) if ch.isalnum() and not ch.isdecimal()]
    return bool(letters) and any(ch.isdecimal() for ch in chunk[letters[0] :])


def test_code_fragments_are_not_words() -> None:
    """File names, catalogue and model numbers: their short letter runs are not words."""
    texts = [
        "File:Gezicht op Smyrna (titel op object), RP-F-F00998-AR.jpg",
        "_MG_2612",
        "IMG-20190512-WA0003 covid-19 (8-bit) 19th-century",
        "Brillendoos van ijzer, BK-1972-142-B.jpg",
        "Grötö RP-P-OB-115.536.jpg",  # a non-ASCII text takes the other path
        "57a6bcd5c12e3c70653f.jpg 1960s 8-bit",  # a hash; quantities keep their words
        "rp ob mg",  # without a digit in the chunk they are words
    ]
    rows, codes, words = token_codes(texts)
    got = list(zip(rows.tolist(), words[codes].tolist(), strict=True))
    assert got == [
        (0, "gezicht"),
        (0, "smyrna"),
        (0, "object"),
        (2, "covid"),
        (2, "bit"),
        (2, "century"),
        (3, "brillendoos"),
        (3, "ijzer"),
        (4, "grötö"),
        (5, "bit"),
        (6, "rp"),
        (6, "ob"),
        (6, "mg"),
    ]


@settings(max_examples=150, deadline=None)
@given(_TEXTS)
def test_tokens_equal_the_regular_expression_per_text(texts: list[str | None]) -> None:
    rows, codes, words = token_codes(texts)
    assert list(zip(rows.tolist(), words[codes].tolist(), strict=True)) == _reference(texts)
    assert len(set(words.tolist())) == len(words)


def test_long_words_and_mixed_texts() -> None:
    texts = ["a" * 30 + " bb " + "a" * 30, "Σίσυφος aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bb"]
    rows, codes, words = token_codes(texts)
    assert list(zip(rows.tolist(), words[codes].tolist(), strict=True)) == _reference(texts)


def _reference_terms(n: int, tags: TagSet, texts: list[str | None]) -> pd.DataFrame:
    coo = tags.matrix.tocoo()
    cells: dict[tuple[int, str], float] = {}
    for r, c, w in zip(coo.row, coo.col, coo.data, strict=True):
        cells[(int(r), str(tags.tags[c]))] = max(cells.get((int(r), str(tags.tags[c])), 0), w)
    for r, w in _reference(texts):
        cells[(r, w)] = max(cells.get((r, w), 0.0), 1.0)
    return pd.DataFrame([(r, t, w) for (r, t), w in cells.items()], columns=["r", "t", "w"])


@settings(max_examples=60, deadline=None)
@given(_TEXTS, st.integers(0, 2**31 - 1))
def test_term_matrix_equals_the_per_cell_maximum(texts: list[str | None], seed: int) -> None:
    n = len(texts)
    g = np.random.default_rng(seed)
    vocab = np.array(["abc", "zz", "ß", "red"])
    mask = g.random((n, len(vocab))) < 0.3
    weights = np.where(mask, g.uniform(0.1, 1.0, (n, len(vocab))), 0.0)
    tags = TagSet(sp.csr_matrix(weights), np.arange(n).astype(str), vocab)
    x, terms = term_matrix(n, tags=tags, texts=texts)
    assert x.has_sorted_indices
    want = _reference_terms(n, tags, texts)
    assert terms.tolist() == sorted(set(want["t"]))
    got = sp.coo_matrix(x)
    frame = pd.DataFrame({"r": got.row, "t": terms[got.col], "w": got.data})
    pd.testing.assert_frame_equal(
        frame.sort_values(["r", "t"]).reset_index(drop=True),
        want.sort_values(["r", "t"]).reset_index(drop=True),
        check_dtype=False,
    )


def test_describe_partitions_equals_describe_clusters_per_level() -> None:
    g = np.random.default_rng(3)
    n = 60
    a = sp.random(n, n, density=0.1, random_state=3, format="csr")
    a = sp.csr_matrix(a + a.T)
    a.setdiag(0)
    a.eliminate_zeros()
    graph = KnnGraph.from_adjacency(a)
    texts = [f"red car {i}" if i % 2 else "blue sky and sea" for i in range(n)]
    terms = term_matrix(n, texts=texts)
    parts = [Partition(g.integers(0, k, n), graph.ids) for k in (2, 5, 9)]
    got = describe_partitions(graph, parts, terms, top_tags=4, n_representatives=3)
    want = pd.concat(
        [
            describe_clusters(graph, p, texts=texts, top_tags=4, n_representatives=3, level=i)
            for i, p in enumerate(parts)
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(_TEXTS, st.integers(0, 3))
def test_arrow_column_equals_the_list(texts: list[str | None], cut: int) -> None:
    """A pandas string column (read from its Arrow buffers, also sliced) gives the list's."""
    column = pd.Series(texts, dtype="string").iloc[min(cut, len(texts)) :]
    rows, codes, words = token_codes(column)
    want = _reference(list(column.astype(object).where(column.notna(), None)))
    assert list(zip(rows.tolist(), words[codes].tolist(), strict=True)) == want
