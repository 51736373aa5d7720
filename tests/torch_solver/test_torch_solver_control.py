"""The step loop's pure rules (one definition for the eager and the fused loop): the PI
step-size controller, the stiffness counters and the failure rules."""
from __future__ import annotations

import math

import torch

from neuroplex.plugins.torch_solver.control import (FAC_MIN, SAFETY, STIFF_CALM, Controller, Limits, control,
                                                    count_stiff_steps, failure_status, failures)
from neuroplex.plugins.torch_solver.dopri5 import Dopri5Stepper
from neuroplex.solution import Status


def _t(*values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def test_controller_accepts_small_errors_grows_within_limits_and_shrinks_after_rejection():
    ctrl = Controller.of(Dopri5Stepper.info, dt_max=None)
    assert math.isclose(ctrl.alpha, 1 / 5 - 0.75 * 0.04) and ctrl.beta == 0.04
    e = _t(1e-12, 0.5, 4.0, math.nan)
    finite = torch.isfinite(e)
    on = torch.ones(4, dtype=torch.bool)
    h = dt = _t(0.1, 0.1, 0.1, 0.1)
    accept, dt_next, err_prev, rejected = control(ctrl, e, finite, on, ~on, h, dt, _t(1e-4, 1e-4, 1e-4, 1e-4), ~on)
    assert accept.tolist() == [True, True, False, False]
    assert rejected.tolist() == [False, False, True, True]
    assert math.isclose(float(dt_next[0]), 0.1 * ctrl.fac_max)  # growth capped
    expected = 0.1 * SAFETY * 0.5 ** -ctrl.alpha * 1e-4 ** ctrl.beta
    assert math.isclose(float(dt_next[1]), expected, rel_tol=1e-12)
    assert float(dt_next[2]) < 0.1  # rejected: smaller
    assert math.isclose(float(dt_next[3]), 0.1 * FAC_MIN)  # non-finite: the smallest factor
    assert float(err_prev[1]) == 0.5 and float(err_prev[2]) == 1e-4  # kept where rejected


def test_controller_leaves_finished_samples_and_caps_at_dt_max():
    ctrl = Controller.of(Dopri5Stepper.info, dt_max=0.05)
    e = _t(1e-6, 1e-6)
    active = torch.tensor([True, False])
    off = torch.zeros(2, dtype=torch.bool)
    accept, dt_next, _, _ = control(ctrl, e, torch.isfinite(e), active, off, _t(0.04, 0.0), _t(0.04, 0.3),
                                    _t(1e-4, 1e-4), off)
    assert accept.tolist() == [True, False]
    assert dt_next.tolist() == [0.05, 0.3]


def test_stiffness_counters_count_steps_at_the_edge_and_reset_after_calm_ones():
    n_stiff = torch.zeros(1, dtype=torch.long)
    n_calm = torch.zeros(1, dtype=torch.long)
    yes, no = torch.tensor([True]), torch.tensor([False])
    for _ in range(3):
        n_stiff, n_calm = count_stiff_steps(yes, yes, n_stiff, n_calm)
    assert int(n_stiff) == 3 and int(n_calm) == 0
    n_stiff, n_calm = count_stiff_steps(no, yes, n_stiff, n_calm)  # a rejected step counts for neither
    assert int(n_stiff) == 3 and int(n_calm) == 0
    for _ in range(STIFF_CALM):
        n_stiff, n_calm = count_stiff_steps(yes, no, n_stiff, n_calm)
    assert int(n_stiff) == 0


def test_failures_name_the_reason_of_each_broken_sample():
    limits = Limits.of(torch.float64, adaptive=True, max_steps=100, dt_min=1e-6, stiff_budget=50)
    done = torch.tensor([False, False, False, False, True])
    finite = torch.tensor([True, True, False, True, True])
    n_steps = torch.tensor([100, 10, 10, 60, 100])
    dt = _t(0.1, 1e-7, 1e-7, 0.1, 1e-9)
    t = _t(1.0, 1.0, 1.0, 1.0, 1.0)
    t1, t_start = _t(10.0, 10.0, 10.0, 10.0, 10.0), _t(0.0, 0.0, 0.0, 0.0, 0.0)
    n_stiff = torch.tensor([0, 0, 0, 20, 20])
    broken, too_many, stiff = failures(limits, done, finite, n_steps, dt, t, t1, t_start, n_stiff)
    assert broken.tolist() == [True, True, True, True, False]  # finished samples never fail
    status = failure_status(torch.zeros(5, dtype=torch.long), broken, finite, too_many, stiff)
    assert status.tolist() == [Status.MAX_STEPS, Status.DT_MIN, Status.NONFINITE, Status.STIFF, Status.SUCCESS]
    broken, _, stiff = failures(limits, done, finite, n_steps, dt, t, t1, t_start, None)
    assert stiff is None and not bool(broken[3])
