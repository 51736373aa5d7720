"""A generated part of a documentation page: a reference between two marker lines that a
``python -m neuroplex.<module>`` entry rewrites from the code and the tests check for drift
(``--check`` exits 1 when the page is stale). Used by :mod:`neuroplex.cli_docs` and
:mod:`neuroplex.neuron_docs`.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class GeneratedSection:
    """The markers of one generated section, the module that writes it and its default page."""

    module: str
    start: str
    end: str
    default_path: Path

    def splice(self, document: str, reference: str) -> str:
        """``document`` with the part between (and including) the markers replaced by ``reference``."""
        if self.start not in document or self.end not in document:
            raise ValueError(f"the document has no generated-reference markers ({self.start} ... {self.end})")
        head, rest = document.split(self.start, 1)
        return head + reference + rest.split(self.end, 1)[1]

    def main(self, render: Callable[[], str], argv: list[str] | None = None, description: str = "") -> int:
        """Rewrite the page given in ``argv`` (default :attr:`default_path`) atomically, or with
        ``--check`` report whether it is stale (exit status 1)."""
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=description)
        parser.add_argument("path", nargs="?", type=Path, default=self.default_path,
                            help=f"the page (default {self.default_path})")
        parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale instead of writing it")
        args = parser.parse_args(argv)
        current = args.path.read_text()
        fresh = self.splice(current, render())
        if args.check:
            if fresh != current:
                print(f"{args.path} is stale: regenerate it with `python -m {self.module} {args.path}`",
                      file=sys.stderr)
                return 1
            return 0
        if fresh != current:
            tmp = args.path.with_suffix(args.path.suffix + ".tmp")
            tmp.write_text(fresh)
            tmp.replace(args.path)  # atomic
            print(f"wrote {args.path}")
        return 0
