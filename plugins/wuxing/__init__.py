"""Wuxing (five-element) neurons, reversible networks and their training methods.

Public names: the neuron (:func:`wuxing`, :func:`ring_rhs`, :func:`rest_point`,
:func:`check_stability`), fixed-point training (:func:`train_fixed_point`).
"""
from .fixedpoint import FixedPointResult, plot_fixed_point, train_fixed_point
from .neuron import StabilityError, check_stability, min_stable_ratio, rest_point, ring_rhs, wuxing, wuxing_reversed

__all__ = ["FixedPointResult", "StabilityError", "check_stability", "min_stable_ratio", "plot_fixed_point",
           "rest_point", "ring_rhs", "train_fixed_point", "wuxing", "wuxing_reversed"]
