"""Meta-tests (datasette style): every hook spec is documented in docs/plugins.md and has a
``test_hook_<name>`` test; every doc is reachable from docs/index.md."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from neuroplex import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, "neuroplex_spec"))


def test_the_hook_set():
    assert HOOKS == sorted([
        "register_neurons", "register_learning_rules", "register_solvers", "register_importers", "register_tasks",
        "register_runners", "register_commands", "neuroplex_configure", "neuroplex_simulation_start", "neuroplex_simulation_finish"])


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    sections = re.findall(r"^## (\S+)\s*$", (ROOT / "docs" / "plugins.md").read_text(), re.M)
    assert hook in sections, f"docs/plugins.md has no '## {hook}' section"


def test_documented_hooks_exist():
    sections = re.findall(r"^## ((?:register|neuroplex)_\w+)\s*$", (ROOT / "docs" / "plugins.md").read_text(), re.M)
    assert sorted(sections) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    pattern = re.compile(rf"^\s*def test_hook_{hook}\(", re.M)
    assert any(pattern.search(p.read_text()) for p in (ROOT / "tests").rglob("test_*.py")), \
        f"no test named test_hook_{hook} under tests/"


def test_docs_index_links_every_doc():
    index = (ROOT / "docs" / "index.md").read_text()
    links = set(re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", index))
    docs = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert not sorted(docs - links), "docs/index.md does not link these docs"
    assert not sorted(link for link in links if not (ROOT / "docs" / link).is_file()), "broken links in docs/index.md"


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S).group(1)
    assert [line.strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]
    assert "NEUROPLEX_DATA" in readme
