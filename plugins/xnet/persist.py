"""Save and load fitted X-Net estimators as JSON (no pickle): settings, op codes and constants."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neuroplex.errors import NeuroplexError
from neuroplex.trainer import atomic_write_text
from .estimators import _XNetBase
from .estimators import XNetClassifier, XNetRegressor

FORMAT = "neuroplex-xnet/1"


def save(model: Any, path: str | Path) -> None:
    """Write a fitted :class:`XNetRegressor` / :class:`XNetClassifier` to ``path`` (JSON, atomic)."""

    if not isinstance(model, _XNetBase) or not hasattr(model, "candidate_"):
        raise NeuroplexError("save: expected a fitted XNetRegressor or XNetClassifier")
    params = model.get_params()
    params["library"] = list(params["library"])
    doc = {"format": FORMAT, "class": type(model).__name__, "params": params, "state": model._save_state()}
    atomic_write_text(path, json.dumps(doc, indent=1))


def load(path: str | Path) -> Any:
    """Read a model written by :func:`save`."""

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NeuroplexError(f"{path}: cannot read an X-Net model ({e})") from None
    if doc.get("format") != FORMAT:
        raise NeuroplexError(f"{path}: not an X-Net model file (format {doc.get('format')!r}, expected {FORMAT!r})")
    classes = {"XNetRegressor": XNetRegressor, "XNetClassifier": XNetClassifier}
    if doc.get("class") not in classes:
        raise NeuroplexError(f"{path}: unknown estimator class {doc.get('class')!r}")
    params = dict(doc["params"])
    params["library"] = tuple(params["library"])
    model = classes[doc["class"]](**params)
    model._load_state(doc["state"])
    return model
