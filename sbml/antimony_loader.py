"""Antimony (``.ant``) to SBML through the ``antimony`` library, then the SBML reader."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import SBMLImportError
from .reader import SBMLModel, read_sbml_string

_LOCK = threading.Lock()  # antimony keeps global state


def antimony_to_sbml(text: str, where: str = "<antimony>") -> str:
    """Translate Antimony source to an SBML string (the main module)."""
    try:
        import antimony
    except ImportError as exc:  # pragma: no cover - antimony ships with tellurium
        raise SBMLImportError(f"{where}: reading Antimony needs the 'antimony' package "
                              f"(pip install 'neuroplex[sbml]')") from exc
    with _LOCK:
        antimony.clearPreviousLoads()
        if antimony.loadAntimonyString(text) < 0:
            msg = " ".join((antimony.getLastError() or "unknown error").split())
            raise SBMLImportError(f"{where}: invalid Antimony: {msg}")
        main = antimony.getMainModuleName()
        sbml = antimony.getSBMLString(main) if main else None
    if not sbml:
        raise SBMLImportError(f"{where}: Antimony produced no SBML model")
    return sbml


def read_antimony(path: str | os.PathLike) -> SBMLModel:
    """Read an Antimony file into an :class:`~neuroplex.sbml.reader.SBMLModel`; the SBML
    translation is kept in ``metadata["sbml_text"]``."""
    path = Path(path)
    if not path.is_file():
        raise SBMLImportError(f"{path}: no such Antimony file")
    model = read_antimony_string(path.read_text(), str(path))
    model.metadata["source"] = str(path)
    return model


def read_antimony_string(text: str, where: str = "<antimony>") -> SBMLModel:
    """Read Antimony source text into an :class:`~neuroplex.sbml.reader.SBMLModel`."""
    return read_sbml_string(antimony_to_sbml(text, where), source=where)
