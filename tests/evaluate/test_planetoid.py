from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ccgraph.evaluate.datasets import load_planetoid
from ccgraph.evaluate.planetoid import (
    PUBLISHED,
    planetoid_feature_aware,
    planetoid_label_propagation,
    planetoid_sklearn_label_spreading,
)
from tests.conftest import require_data


@pytest.fixture(scope="module", params=["cora", "citeseer"])
def data(request):
    return load_planetoid(request.param, data_dir=require_data("citation-graphs"))


def test_label_propagation_beats_published_lp(data):
    res = planetoid_label_propagation(data)
    assert res.test_accuracy >= PUBLISHED["label_propagation"][data.name]
    assert "test" not in " ".join(res.grid.columns)  # the grid only shows validation scores
    assert res.val_accuracy == res.grid["val_accuracy"].max()


def test_label_propagation_agrees_with_sklearn(data):
    ours = planetoid_label_propagation(data, alphas=[0.9])
    theirs = planetoid_sklearn_label_spreading(data, alphas=[0.9])
    assert abs(ours.test_accuracy - theirs.test_accuracy) <= 0.005


def test_test_labels_never_steer_the_choice(data):
    rng = np.random.default_rng(0)
    labels = data.labels.copy()
    labels[data.test] = rng.permutation(labels[data.test])
    scrambled = dataclasses.replace(data, labels=labels)
    a = planetoid_label_propagation(data)
    b = planetoid_label_propagation(scrambled)
    assert a.params == b.params and a.val_accuracy == b.val_accuracy


@pytest.mark.slow
def test_feature_aware_beats_gcn(data):
    res = planetoid_feature_aware(data)
    assert res.test_accuracy >= PUBLISHED["gcn"][data.name]
    assert len(res.test_correct) == 1000
