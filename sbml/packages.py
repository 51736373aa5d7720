"""SBML Level 3 packages the way libsbml handles them.

* ``comp`` (hierarchical models) is flattened by libsbml's own ``CompFlatteningConverter``
  into one core model, which is then read as any other.
* A package the document declares optional (``required="false"``, e.g. ``fbc`` in many
  newer BioModels) does not change the kinetic core: it is ignored with a warning naming it.
* ``layout``, ``render`` and ``groups`` only annotate a model and are ignored silently.
* A required package neuroplex cannot honour is an error naming it.
"""
from __future__ import annotations

import warnings
from typing import Any

import libsbml

from .errors import SBMLImportError

#: packages that only annotate a model (drawing, grouping) and leave its dynamics alone
HARMLESS = frozenset({"layout", "render", "groups"})


def _enabled(doc: Any) -> list[str]:
    names = []
    for i in range(doc.getNumPlugins()):
        pkg = doc.getPlugin(i).getPackageName()
        # l3v2extendedmath is libsbml's internal carrier of L3v2 core math, not a package
        if pkg and pkg != "l3v2extendedmath" and doc.isPackageEnabled(pkg):
            names.append(pkg)
    return names


def flatten_comp(doc: Any, where: str) -> None:
    """Flatten a ``comp`` document in place (submodels, ports, replacements, deletions)."""
    props = libsbml.ConversionProperties()
    props.addOption("flatten comp", True)
    props.addOption("leavePorts", False)
    status = doc.convert(props)
    if status != libsbml.LIBSBML_OPERATION_SUCCESS:
        log = doc.getErrorLog()
        first = next((" ".join(log.getError(i).getMessage().split()) for i in range(log.getNumErrors())
                      if log.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR), f"libsbml status {status}")
        raise SBMLImportError(f"{where}: cannot flatten the comp package's submodels: {first}")


def prepare_packages(doc: Any, where: str) -> bool:
    """Flatten ``comp``, ignore optional packages with a warning, refuse required ones;
    True where the document was flattened."""
    if doc.getLevel() < 3:
        return False
    flattened = "comp" in _enabled(doc)
    if flattened:
        flatten_comp(doc, where)
    refused, ignored = [], []
    for pkg in _enabled(doc):
        if pkg in HARMLESS or pkg == "comp":
            continue
        (ignored if not doc.getPackageRequired(pkg) else refused).append(pkg)
    for i in range(doc.getNumUnknownPackages()):
        name = doc.getUnknownPackagePrefix(i) or doc.getUnknownPackageURI(i)
        (ignored if not doc.getPackageRequired(doc.getUnknownPackageURI(i)) else refused).append(name)
    model = doc.getModel()
    mid = model.getId() if model is not None and model.getId() else "(no id)"
    if refused:
        raise SBMLImportError(f"{where}: model {mid!r} uses the SBML package(s) {', '.join(sorted(set(refused)))}, "
                              f"which neuroplex does not support (core SBML, and comp through flattening)")
    if ignored:
        warnings.warn(f"{where}: model {mid!r}: ignoring the optional SBML package(s) "
                      f"{', '.join(sorted(set(ignored)))} (required=\"false\"); simulating the kinetic core",
                      stacklevel=3)
    return flattened
