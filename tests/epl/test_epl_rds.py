"""The RDS description, its reduced evaluation against the full DS, population batching,
the ``epl`` model and the two equilibrium methods."""
from __future__ import annotations

import json

import pytest
import torch

import neuroplex as nx
from neuroplex.errors import ModelError
from neuroplex.plugins.epl import EPLDynamics, RDSPopulation, build, relax, save_description
from neuroplex.plugins.epl.model import EXAMPLE

DESC = {
    "components": {"A": {"mass": 1, "charge": 1}, "B": {"mass": 2, "charge": -1}},
    "genes": {"a": {"A": 1}, "b": {"B": 1}, "ab": {"A": 1, "B": 1}},
    "spaces": {"in": [0, 0], "out": [1, 0]},
    "neighbours": [["in", "out", 1.0]],
    "nodes": [{"gene": "a", "space": "in", "x0": 1.0, "role": "input", "c": 0.5},
              {"gene": "b", "space": "in", "x0": 0.8, "c": 0.5},
              {"gene": "ab", "space": "in", "x0": 0.2, "c": 0.5},
              {"gene": "a", "space": "out", "x0": 0.4, "c": 0.5},
              {"gene": "ab", "space": "out", "x0": 0.1, "role": "output", "c": 0.5, "h": 0.1, "x_h": 0.3}],
    "reactions": [{"space": "in", "a": "a", "b": "b", "c": "ab", "k": 1.0}],
    "transport": [{"gene": "ab", "from": "in", "to": "out", "k": 0.5, "v": 0.2},
                  {"gene": "a", "from": "in", "to": "out", "k": 0.3, "v": -0.1}],
}


def test_epl_rds_builds_theta_from_json_and_toml(tmp_path):
    path = save_description(DESC, tmp_path / "sys.json")
    r = build(path)
    assert r.node_names == ["a@in", "b@in", "ab@in", "a@out", "ab@out"]
    assert r.inputs == [0] and r.outputs == [4]
    s = r.system
    assert torch.allclose(s.M.T @ s.Mperp, torch.zeros(2, 3, dtype=s.M.dtype))
    assert s.m.tolist() == [1.0, 2.0, 3.0, 1.0, 3.0]
    assert torch.linalg.eigvalsh(s.V).min() >= -1e-12  # V = q (1/D) q^T is PSD
    toml = tmp_path / "sys.toml"
    toml.write_text('self_inverse_distance = 1.0\n[components.A]\nmass = 1\n[genes.a]\nA = 1\n[genes.aa]\nA = 2\n'
                    '[spaces]\ncell = [0, 0]\n[[nodes]]\ngene = "a"\nspace = "cell"\n[[nodes]]\ngene = "aa"\n'
                    'space = "cell"\nx0 = 0.5\n[[reactions]]\nspace = "cell"\na = "a"\nb = "a"\nc = "aa"\nk = 2.0\n')
    t = build(toml)
    assert t.system.Mperp[:, 0].tolist() == [-2.0, 1.0] and t.system.k.tolist() == [2.0]


@pytest.mark.parametrize("bad, message", [
    ({"reactions": [{"space": "in", "a": "a", "b": "a", "c": "ab"}]}, "does not conserve"),
    ({"transport": [{"gene": "b", "from": "in", "to": "out"}]}, "names a node that does not exist"),
    ({"neighbours": []}, "not neighbours"),
])
def test_epl_rds_rejects_bad_descriptions(bad, message):
    with pytest.raises(ModelError, match=message):
        build({**DESC, **bad})


def test_epl_rds_reduced_flows_equal_full_ds_and_population_batches():
    r = build(DESC)
    other = build(EXAMPLE)
    pop = RDSPopulation([r, other, r])
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.exp(torch.randn(3, pop.n_max, generator=g, dtype=torch.float64)),
                   torch.randn(3, pop.n_max, generator=g, dtype=torch.float64)], -1)
    f = pop.rhs(torch.zeros(3), y, pop.default_params())
    for i, sys_ in enumerate([r, other, r]):
        d = EPLDynamics(sys_.system)
        yi = pop.unpad(y)[i]
        expected = d.rhs(torch.zeros(1), yi[None], d.pack()[None])[0]
        assert torch.allclose(pop.unpad(f)[i], expected, rtol=1e-12, atol=1e-12)
    # a subset of rows (as a solver may pass) gives the same rows
    sub = pop.rhs(torch.zeros(1), y[1:2], pop.default_params()[1:2])
    assert torch.allclose(sub, f[1:2])
    sol = pop.relax(tol=1e-9)
    assert bool((sol.stats["residual"] < 1e-9).all())
    single = relax(other.system, tol=1e-9)
    assert torch.allclose(pop.unpad(sol.ys)[1], single.ys[0], atol=1e-6)


def test_epl_equilibrium_methods_agree_and_conserve():
    s = build(EXAMPLE).system
    it = relax(s, method="iteration", tol=1e-10)
    ode = relax(s, method="ode", tol=1e-9)
    assert float(it.stats["residual"].max()) < 1e-10 and float(ode.stats["residual"].max()) < 1e-9
    assert torch.allclose(it.ys, ode.ys, atol=1e-6)
    x = it.ys[0, :3]
    assert torch.allclose(s.M.T @ x, s.M.T @ s.x0)  # A and B atoms kept
    # detailed balance at the equilibrium: the chemical potentials balance
    Hx, _ = s.gradient(x, torch.zeros(3, dtype=x.dtype))
    assert abs(float(Hx @ s.Mperp[:, 0])) < 1e-8


def test_epl_model_registered_as_neuron_runs_in_core_simulate(tmp_path):
    assert "epl" in nx.get_host().names("neurons") if hasattr(nx.get_host(), "names") else True
    model = nx.load_model("epl")
    sol = nx.simulate(model, (0, 20), n_points=3)
    s = build(EXAMPLE).system
    eq = relax(s, tol=1e-10).ys[0]
    assert torch.allclose(sol.ys[0, -1], eq, atol=1e-5)
    path = tmp_path / "ex.json"
    path.write_text(json.dumps(EXAMPLE))
    assert nx.get_neuron("epl")(system=str(path)).state_names == model.state_names
