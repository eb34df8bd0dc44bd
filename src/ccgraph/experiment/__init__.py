"""Cluster-substitution experiments: plan, assign, analyse, power and simulate.

Show an image from a result's cluster instead of the result itself, to validate the clustering
and to gather clicks on images that are never shown. See ``docs/experiment.md``.
"""

from __future__ import annotations

from ccgraph.experiment.analyse import analyse, ratio_variance
from ccgraph.experiment.assign import arm_weights, assign, bucket
from ccgraph.experiment.breakdown import benjamini_hochberg
from ccgraph.experiment.logcheck import LOG_COLUMNS, check_log
from ccgraph.experiment.plan import PLAN_COLUMNS, REASONS, plan_substitutions
from ccgraph.experiment.power import (
    MinimumDetectableEffect,
    SampleSize,
    design_effect,
    minimum_detectable_effect,
    power_two_proportions,
    sample_size,
)
from ccgraph.experiment.result import ExperimentResult
from ccgraph.experiment.simulate import (
    SimulatedLog,
    SimulationTruth,
    position_bias_curve,
    simulate_log,
    simulation_truth,
)

__all__ = [
    "LOG_COLUMNS",
    "PLAN_COLUMNS",
    "REASONS",
    "ExperimentResult",
    "MinimumDetectableEffect",
    "SampleSize",
    "SimulatedLog",
    "SimulationTruth",
    "analyse",
    "arm_weights",
    "assign",
    "benjamini_hochberg",
    "bucket",
    "check_log",
    "design_effect",
    "minimum_detectable_effect",
    "plan_substitutions",
    "position_bias_curve",
    "power_two_proportions",
    "ratio_variance",
    "sample_size",
    "simulate_log",
    "simulation_truth",
]
