"""Import boundaries, checked on the source (AST): core imports no plugin; a plugin imports
another plugin only through its package (``neuroplex.plugins.<other>`` / ``neuroplex.sbml``
public names), never its submodules; imports inside functions, which hide dependencies and
import cycles, are kept to optional dependencies (a ratchet on the ones that remain)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: source folders and the package each maps onto (pyproject's package-dir)
FOLDERS = {"core": "neuroplex", "sbml": "neuroplex.sbml", "plugins": "neuroplex.plugins"}
#: in-function imports of neuroplex modules still in the code (each names why: an optional
#: dependency behind the imported module, or a lazy command group); the number may only go down
IN_FUNCTION_BUDGET = 24


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    base = FOLDERS[parts[0]].split(".")
    rest = parts[1:]
    if rest and rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join(base + rest)


def _owner(module: str) -> str | None:
    """The plugin a module belongs to (``neuroplex.sbml``, ``neuroplex.plugins.snn``), or None for core."""
    parts = module.split(".")
    if parts[:2] == ["neuroplex", "sbml"]:
        return "neuroplex.sbml"
    if parts[:2] == ["neuroplex", "plugins"] and len(parts) > 2:
        return ".".join(parts[:3])
    if parts[:2] == ["neuroplex", "plugins"]:
        return "neuroplex.plugins"
    return None


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for each import in ``path``, with
    relative imports resolved and ``from pkg import name`` read as ``pkg.name`` where
    ``pkg.name`` is a module of the tree."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    found.append((sub if _is_module(sub) else target, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "neuroplex":
        return False
    for folder, pkg in FOLDERS.items():
        if name == pkg or name.startswith(pkg + "."):
            rest = name[len(pkg) + 1:].split(".") if name != pkg else []
            if pkg == "neuroplex" and rest and rest[0] in ("sbml", "plugins"):
                continue
            base = ROOT / folder / Path(*rest) if rest else ROOT / folder
            return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()
    return False


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_core_imports_no_plugin() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in (ROOT / "core").rglob("*.py")
           for mod, line, _ in _imports(p) if _owner(mod) is not None]
    assert not bad, "core must not import plugins:\n" + "\n".join(bad)


def test_plugins_import_other_plugins_only_through_their_package() -> None:
    bad = []
    for path in _sources():
        mine = _owner(_module_name(path))
        if mine is None:
            continue
        for mod, line, _ in _imports(path):
            other = _owner(mod)
            if other is not None and other != mine and other != "neuroplex.plugins" and mod != other:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod} (use {other}'s public names)")
    assert not bad, "plugins import other plugins' internals:\n" + "\n".join(bad)


def test_in_function_imports_of_neuroplex_modules_stay_within_budget() -> None:
    inner = sorted({f"{p.relative_to(ROOT)}:{line}" for p in _sources() for mod, line, in_fn in _imports(p)
                    if in_fn and mod.startswith("neuroplex")})
    assert len(inner) <= IN_FUNCTION_BUDGET, (
        f"{len(inner)} in-function imports of neuroplex modules (budget {IN_FUNCTION_BUDGET}); import at module "
        "level unless the module pulls in an optional dependency:\n" + "\n".join(inner))


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    # the scan itself: a relative import two levels up into another plugin's submodule is caught
    path = ROOT / "plugins" / "snn" / "runner.py"
    mods = {mod for mod, _, _ in _imports(path)}
    assert "neuroplex.runners" in mods and "neuroplex.plugins.snn.integrators" in mods
    assert _owner("neuroplex.plugins.snn.integrators") == "neuroplex.plugins.snn"
    assert _owner("neuroplex.sbml.runner") == "neuroplex.sbml" and _owner("neuroplex.api") is None
