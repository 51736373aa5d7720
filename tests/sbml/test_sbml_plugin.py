"""The sbml plugin: importers by suffix (SBML, Antimony) and ``neuroplex sbml testsuite``."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("libsbml")

import neuroplex  # noqa: E402
from neuroplex.cli import build_cli  # noqa: E402
from neuroplex.sbml.errors import SBMLImportError  # noqa: E402
from neuroplex.sbml.reader import SBMLModel  # noqa: E402
from neuroplex.testing import require_data  # noqa: E402

ANT = """
model decay()
  compartment C = 2
  species S in C = 3
  R: S -> ; k*S*C
  k = 0.5
end
"""


def test_antimony_and_sbml_files_load_by_suffix(tmp_path) -> None:
    pytest.importorskip("antimony")
    path = tmp_path / "decay.ant"
    path.write_text(ANT)
    model = neuroplex.load_model(path)
    assert isinstance(model, SBMLModel) and model.metadata["source"] == str(path)
    xml = tmp_path / "decay.xml"
    xml.write_text(model.metadata["sbml_text"])
    again = neuroplex.load_model(xml)
    assert again.metadata["source"] == str(xml) and again.state_names == model.state_names
    sol = neuroplex.simulate(again, (0, 2), n_points=3)
    assert sol.names == ["S"] and float(sol["S"][0, -1]) == pytest.approx(3 * 2.718281828459045 ** -1.0, rel=1e-6)


def test_bad_antimony_is_one_clear_error(tmp_path) -> None:
    pytest.importorskip("antimony")
    path = tmp_path / "bad.ant"
    path.write_text("model x()\n  S -> ; k*\nend\n")
    with pytest.raises(SBMLImportError, match="bad.ant: invalid Antimony"):
        neuroplex.load_model(path)


def test_testsuite_command(tmp_path) -> None:
    root = require_data("sbml-test-suite")
    out = tmp_path / "failures.json"
    result = CliRunner().invoke(build_cli(), ["sbml", "testsuite", str(root), "--only", "00001,00026",
                                              "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "PASS 2/2 (torch)" in result.output
    data = json.loads(out.read_text())
    assert data["passed"] == 2 and data["failures"] == {}


def test_testsuite_command_reports_failures(tmp_path) -> None:
    root = require_data("sbml-test-suite")
    case = tmp_path / "00001"
    case.mkdir()
    for f in (root / "00001").iterdir():
        text = f.read_text()
        if f.name.endswith("-results.csv"):  # corrupt one expected value
            lines = text.splitlines()
            head, *rest = lines[1].split(",")
            lines[1] = ",".join([head, "999"] + rest[1:])
            text = "\n".join(lines) + "\n"
        (case / f.name).write_text(text)
    out = tmp_path / "f.json"
    result = CliRunner().invoke(build_cli(), ["sbml", "testsuite", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 1
    assert "FAIL 00001" in result.output and "PASS 0/1" in result.output
    assert "expected 999" in json.loads(out.read_text())["failures"]["00001"]
