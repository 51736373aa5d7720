"""libsbml's consistency check, summarised: one line per problem naming its severity, the
file line, the libsbml error id and the first sentence of libsbml's message (the full text
is kept for ``--json`` and ``--debug``)."""
from __future__ import annotations

import re
from typing import Any


def check(doc: Any) -> list[dict[str, Any]]:
    """Run libsbml's full consistency check on ``doc`` (units and modelling practice
    included) and return its problems, errors first."""
    import libsbml

    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, True)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_MODELING_PRACTICE, True)
    doc.checkConsistency()
    severity = {libsbml.LIBSBML_SEV_INFO: "info", libsbml.LIBSBML_SEV_WARNING: "warning",
                libsbml.LIBSBML_SEV_ERROR: "error", libsbml.LIBSBML_SEV_FATAL: "fatal"}
    out = []
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        text = " ".join(err.getMessage().split())
        out.append({"severity": severity.get(err.getSeverity(), str(err.getSeverity())), "line": err.getLine(),
                    "id": err.getErrorId(), "category": err.getCategoryAsString(),
                    "summary": first_sentence(text), "message": text})
    rank = {"fatal": 0, "error": 1, "warning": 2, "info": 3}
    return sorted(out, key=lambda p: (rank.get(p["severity"], 4), p["line"]))


def first_sentence(text: str) -> str:
    """libsbml messages start with the rule and go on to the case: keep the case when it is
    there (it names the element and id), else the first sentence."""
    parts = [re.sub(r"^Reference: L\dV\d Section [\d.]+ ", "", p.strip()) for p in text.split(". ") if p.strip()]
    case = [p for p in parts[1:] if "'" in p]
    return (case[-1] if case else parts[0] if parts else text).rstrip(".")


def format_problems(problems: list[dict[str, Any]], limit: int = 10) -> list[str]:
    """Text lines: a count by severity, then the first ``limit`` problems."""
    if not problems:
        return ["consistency  no problems (libsbml)"]
    counts: dict[str, int] = {}
    for p in problems:
        counts[p["severity"]] = counts.get(p["severity"], 0) + 1
    summary = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in counts.items())
    lines = [f"consistency  {summary} (libsbml)"]
    for p in problems[:limit]:
        lines.append(f"  line {p['line']}: {p['severity']} {p['id']} ({p['category']}): {p['summary']}")
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (--json lists all)")
    return lines
