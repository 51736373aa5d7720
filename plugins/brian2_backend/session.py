"""Brian2 run set-up: codegen target, float type and device, restored afterwards.

Brian2 keeps its code-generation target, default float type and device in global state;
:func:`brian_session` sets them for one run and puts them back so that two solvers in one
process (e.g. a cython run and a numpy run in the same comparison) do not leak settings.

The default target is Brian2's own default, ``"auto"``: Cython where it can compile, else
numpy, as Brian2 decides (``brian2.devices.device.auto_target``, checked once per process).
:func:`resolve_target` says what ``auto`` becomes before a run, :func:`ran_targets` reads
back from the code objects which target actually ran.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator

from neuroplex.errors import NeuroplexError

TARGETS = ("auto", "cython", "numpy", "cpp_standalone")


def resolve_target(target: str) -> str:
    """The target a run with ``target`` uses: itself, or for ``"auto"`` Brian2's choice
    (``cython`` when Cython code compiles here, else ``numpy``)."""
    if target != "auto":
        return target
    import_brian2()
    from brian2.devices.device import auto_target

    return str(auto_target().class_name)


def ran_targets(network: Any) -> str:
    """The code-generation targets of the code objects a Brian2 ``Network`` ran (``cython``,
    ``numpy``; several joined by ``+``), or the standalone device that built them
    (``cpp_standalone``), read back after the run."""
    from brian2.devices.device import all_devices, get_device

    device = get_device()
    name = next((key for key, value in all_devices.items() if value is device), "runtime")
    if name != "runtime":
        return name
    found = sorted({str(co.class_name or co.__class__.__name__)  # code_objects holds weak proxies
                    for obj in network.sorted_objects for co in getattr(obj, "code_objects", ())})
    return "+".join(found) if found else "none"


@dataclass
class Session:
    """What a run needs to know about its Brian2 environment: the target asked for and the
    one it resolves to (``resolved``; :func:`ran_targets` confirms it after the run)."""

    target: str
    standalone: bool
    resolved: str = ""
    directory: str | None = None

    def build(self) -> None:
        """Compile and run a standalone project (no-op for runtime targets)."""
        if not self.standalone:
            return
        from brian2 import device

        device.build(directory=self.directory, compile=True, run=True, debug=False, clean=False)

    def last_run_time(self) -> float | None:
        """Brian2's own measurement of its main loop (``device._last_run_time``)."""
        from brian2 import device

        value = getattr(device, "_last_run_time", None)
        return float(value) if value is not None else None


def progress_report(enabled: bool, label: str) -> tuple[Any, Any]:
    """A Brian2 ``report`` callback driving a tqdm bar (``(None, None)`` when disabled);
    call the second item to close the bar."""
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=100, unit="%", desc=label)

    def report(elapsed: Any, completed: float, start: Any, duration: Any) -> None:
        bar.update(max(0, int(round(float(completed) * 100)) - bar.n))

    return report, bar.close


def import_brian2() -> Any:
    """Import brian2 or raise a clear error (it is an optional dependency)."""
    try:
        import brian2
    except ImportError as exc:  # pragma: no cover - brian2 is installed in the test set-up
        raise NeuroplexError("the brian2 solver needs Brian2: pip install 'neuroplex[snn]'") from exc
    return brian2


@contextlib.contextmanager
def brian_session(target: str = "auto", dtype: str = "float64", directory: str | None = None) -> Iterator[Session]:
    """Set Brian2's target, float type and device for the duration of a run."""
    if target not in TARGETS:
        raise NeuroplexError(f"brian2 target must be one of {', '.join(TARGETS)}, not {target!r}")
    if dtype not in ("float32", "float64"):
        raise NeuroplexError(f"brian2 dtype must be 'float32' or 'float64', not {dtype!r}")
    brian2 = import_brian2()
    import numpy as np

    prefs = brian2.prefs
    old_target = prefs.codegen.target
    old_dtype = prefs.core.default_float_dtype
    own_dir = None
    prefs.core.default_float_dtype = getattr(np, dtype)
    standalone = target == "cpp_standalone"
    try:
        if standalone:
            if directory is None:
                own_dir = directory = tempfile.mkdtemp(prefix="neuroplex_brian2_")
            brian2.set_device("cpp_standalone", directory=directory, build_on_run=False)
            brian2.device.reinit()
            brian2.device.activate(directory=directory, build_on_run=False)
        else:
            prefs.codegen.target = target
        yield Session(target=target, standalone=standalone, resolved=resolve_target(target), directory=directory)
    finally:
        prefs.codegen.target = old_target
        prefs.core.default_float_dtype = old_dtype
        if standalone:
            brian2.device.reinit()
            brian2.set_device("runtime")
            if own_dir is not None and os.path.isdir(own_dir):
                shutil.rmtree(own_dir, ignore_errors=True)
