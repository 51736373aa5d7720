"""``python -m benchmarks NAME [args]`` runs ``benchmarks/NAME_bench.py`` (or ``NAME.py``);
``python -m benchmarks --help`` lists them. Every benchmark is also a plain script."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> dict[str, Path]:
    return {p.stem[: -len("_bench")] if p.stem.endswith("_bench") else p.stem: p
            for p in sorted(HERE.glob("*.py")) if not p.name.startswith("_")}


def main(argv: list[str]) -> int:
    benches = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m benchmarks NAME [ARGS...]   (see benchmarks/README.md)\n\nbenchmarks:")
        for name, path in benches.items():
            doc = (path.read_text(encoding="utf-8").split('"""')[1].strip().splitlines() or [""])[0]
            print(f"  {name:<16} {doc}")
        return 0
    name = argv[0]
    if name not in benches:
        print(f"unknown benchmark {name!r}; known: {', '.join(benches)}", file=sys.stderr)
        return 2
    sys.argv = [str(benches[name]), *argv[1:]]
    runpy.run_path(str(benches[name]), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
