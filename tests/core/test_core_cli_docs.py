"""The CLI reference in docs/cli.md is generated from the click commands and must match them
(issue 21 item 7): `python -m neuroplex.cli_docs` regenerates it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from neuroplex import cli_docs

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"


def test_cli_reference_matches_the_commands():
    current = PAGE.read_text()
    assert cli_docs.splice(current, cli_docs.render()) == current, (
        "docs/cli.md's reference is stale: run `python -m neuroplex.cli_docs docs/cli.md`")


def test_reference_covers_core_and_builtin_plugin_commands():
    text = cli_docs.render()
    for command in ("simulate", "plugins", "solvers", "neurons", "compare", "compare-snn", "eqprop", "sbml"):
        assert f"### `neuroplex {command}`" in text
    assert "| `--dtype [float32\\|float64]` | Floating-point precision. |" in text


def test_render_and_check_detect_drift(tmp_path: Path, capsys: pytest.CaptureFixture):
    @click.group()
    def tool():
        """A tool."""

    @tool.command()
    @click.option("--n", type=int, default=3, show_default=True, help="How many | pipes.")
    @click.argument("name")
    def greet(n, name):
        """Greet NAME."""

    text = cli_docs.render(tool)
    assert "### `neuroplex greet`\n\n`neuroplex greet [OPTIONS] NAME`\n\nGreet NAME." in text
    assert "| `--n INTEGER` | How many \\| pipes. [default: 3] |" in text
    page = tmp_path / "cli.md"
    page.write_text(f"intro\n{cli_docs.START}\nold\n{cli_docs.END}\noutro\n")
    assert cli_docs.splice(page.read_text(), text) == f"intro\n{text}\noutro\n"
    with pytest.raises(ValueError, match="no generated-reference markers"):
        cli_docs.splice("no markers", text)
    assert cli_docs.main(["--check", str(page)]) == 1
    assert "is stale: regenerate it with" in capsys.readouterr().err
    assert cli_docs.main([str(page)]) == 0
    assert page.read_text().startswith(f"intro\n{cli_docs.START}\n\n### `neuroplex`")
    assert cli_docs.main(["--check", str(page)]) == 0


def test_module_runs_as_a_script():
    check = subprocess.run([sys.executable, "-m", "neuroplex.cli_docs", "--check", str(PAGE)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_doc_blocks_naming_a_file_are_that_file():
    """A ```python file=PATH block in docs/ is the file verbatim (the docs test executes it, the
    file's own tests test it): plugins.md's complete solver example cannot drift."""
    import re

    fence = re.compile(r"^```python file=(\S+)\n(.*?)^```", re.S | re.M)
    found = [(m.group(1), m.group(2)) for page in sorted((ROOT / "docs").glob("*.md"))
             for m in fence.finditer(page.read_text())]
    assert "examples/neuroplex-example-plugin/neuroplex_example_plugin/euler.py" in dict(found)
    for path, body in found:
        assert body == (ROOT / path).read_text(), f"docs block for {path} differs from the file"
