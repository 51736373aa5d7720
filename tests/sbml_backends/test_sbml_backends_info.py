"""``neuroplex sbml info`` and :func:`neuroplex.sbml.info.summarize`."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from neuroplex.errors import ModelError
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.testing import require_data

pytest.importorskip("libsbml")

from neuroplex.sbml.info import info, summarize  # noqa: E402
from neuroplex.sbml.writer import write_sbml  # noqa: E402


def test_summary_of_a_curated_model():
    s = summarize(require_data("biomodels", "BIOMD0000000081.xml"))
    # counts from the shared data's README: 23 species, 15 reactions, 2 delayed events, 9 assignment rules
    assert (s["level"], s["version"]) == (3, 1)
    assert len(s["species"]) == 23 and len(s["reactions"]) == 15 and len(s["compartments"]) == 3
    assert len(s["events"]) == 2 and all(e["delay"] is not None for e in s["events"])
    assert sum(r["type"] == "assignment" for r in s["rules"]) == 9
    assert len(s["function_definitions"]) == 15


def test_summary_of_a_written_model(tmp_path):
    m = ModelIR("izh", states=[State("v", -65.0), State("u", "b*v")],
                parameters=[Parameter("a", 0.02), Parameter("b", 0.2), Parameter("I", 10.0)],
                derivatives={"v": "0.04*v**2 + 5*v + 140 - u + I", "u": "a*(b*v - u)"},
                assignments={"spiking": "Piecewise((1, v > 0), (0, True))"},
                events=[Event("spike", "v >= 30", {"v": "-65", "u": "u + 8"})])
    path = tmp_path / "izh.xml"
    write_sbml(m, path)
    s = summarize(path)
    assert (s["level"], s["version"]) == (3, 2) and s["id"] == "izh"
    assert [p["id"] for p in s["parameters"]] == ["a", "b", "I", "v", "u", "spiking"]
    assert [r["type"] for r in s["rules"]] == ["rate", "rate", "assignment"]
    assert s["initial_assignments"] == {"u": "b * v"}
    assert s["events"][0]["assignments"] == {"v": "-65", "u": "8 + u"}
    assert s["events"][0]["trigger"] == "v >= 30"


def test_cli_text_and_json():
    path = require_data("biomodels", "BIOMD0000000127.xml")
    runner = CliRunner()
    out = runner.invoke(info, [str(path)])
    assert out.exit_code == 0, out.output
    assert "SBML Level 2 Version 4" in out.output and "events                    2" in out.output
    out = runner.invoke(info, ["--verbose", str(path)])
    assert "event event_0000001: when v > Vthresh: v = c; U = U + d" in out.output
    out = runner.invoke(info, ["--json", str(path)])
    data = json.loads(out.output)
    assert data["name"] == "Izhikevich2003_SpikingNeuron" and len(data["parameters"]) == 8


def test_bad_files_fail_with_line_numbers(tmp_path):
    with pytest.raises(ModelError, match="no such SBML file"):
        summarize(tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text('<?xml version="1.0"?>\n<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" '
                   'version="2">\n<model id="m"><listOfSpecies><species id="s"/></listOfSpecies>\n')
    with pytest.raises(ModelError, match=r"bad\.xml:\d+:"):
        summarize(bad)
