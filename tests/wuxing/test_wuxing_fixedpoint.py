"""Fixed-point training (framework paper section 3.2): the worked example and infeasible targets."""
import pytest
import torch
from click.testing import CliRunner

from neuroplex.cli import build_cli
from neuroplex.errors import NeuroplexError
from neuroplex.plugins.wuxing import train_fixed_point

TARGET = [0.8, 0.6, 1.5, 1.0, 0.9]


def test_worked_example_converges_with_k3():
    res = train_fixed_point(TARGET, K1=1.0, K2=0.5, K3=0.5, param="K3", convention="next")
    assert res.status == "converged", res.reason
    assert res.adjustments <= 40
    assert max(abs(a - b) for a, b in zip(res.state.tolist(), TARGET)) < 1e-2
    closed = torch.tensor([0.1667, 2.0, 0.1852, 0.5, 0.6481], dtype=torch.float64)
    assert torch.allclose(res.k["K3"], closed, atol=2e-2)
    assert torch.allclose(res.required, closed, atol=1e-4)
    assert res.errors[0] > 0.4 and res.errors[-1] < res.errors[0] / 40  # it really moved there


def test_literal_prev_orientation_is_reported_infeasible():
    res = train_fixed_point(TARGET, param="K3", convention="prev")
    assert res.status == "infeasible"
    assert "element M" in res.reason and "K3 = -0.125" in res.reason
    assert res.errors == []  # not iterated into a stall


def test_k1_reaches_the_prev_orientation():
    res = train_fixed_point(TARGET, param="K1", convention="prev", max_adjustments=60, dt=0.2)
    assert res.status == "converged", res.reason
    assert torch.allclose(res.k["K1"], res.required, atol=3e-2)


def test_too_few_adjustments_is_not_converged_and_bad_targets_are_rejected():
    res = train_fixed_point(TARGET, param="K3", max_adjustments=3)
    assert res.status == "not converged" and "after 3 adjustments" in res.reason
    with pytest.raises(NeuroplexError, match="positive"):
        train_fixed_point([0.8, -0.6, 1.5, 1.0, 0.9])


def test_fixed_point_command_writes_the_trajectory_plot(tmp_path):
    plot = tmp_path / "fp.png"
    res = CliRunner().invoke(build_cli(), ["wuxing", "fixed-point", "--dt", "0.2", "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("converged") and plot.stat().st_size > 10_000
    res = CliRunner().invoke(build_cli(), ["wuxing", "fixed-point", "--convention", "prev"])
    assert res.exit_code == 2 and res.output.startswith("infeasible: element M")
