"""Compiled libraries: the integrator (one per machine) and each model's right-hand side (one
per model and compiler), cached on disk and loaded with ctypes.

A model library's file name is a hash of the model's equations (:func:`.csource.model_key`),
the compiler's identity and flags (:func:`neuroplex.cbuild.library_key`), so a process that
finds it skips generating the source as well as compiling. Model libraries build at ``-O2``
(seconds saved per model; the integrator keeps ``-O3``). The folder is
``$NEUROPLEX_NATIVE_CACHE``, default ``~/.cache/neuroplex/native`` (:func:`neuroplex.cbuild.cache_dir`).
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import sympy

from neuroplex import cbuild
from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR

from .csource import integrator_source, model_key, model_source

#: environment variable naming the library cache folder
CACHE_ENV = "NEUROPLEX_NATIVE_CACHE"
#: flags after the defaults for model libraries
MODEL_FLAGS = ("-O2",)
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_SIGNATURE = [_P, _P, _P, _I, _I, _P, _P, _D, _D, _P, _I, _D, _P, _D, _D, _D, _I, _I, _P, _P]
#: ``neuroplex_solve_events``: bind, rhs, jac, atoms, nx, nk, na, p, y0, t0, t1, t_eval, n_t, rtol,
#: atol, h_init, h_max, h_min, max_steps, method, shift, out, stats, t_end, y_end, event_index
_EVENTS_SIGNATURE = [_P, _P, _P, _P, _I, _I, _I, _P, _P, _D, _D, _P, _I, _D, _P, _D, _D, _D, _I, _I, _P, _P, _P, _P,
                     _P, _P]


@dataclass(frozen=True)
class NativeLibrary:
    """A model's compiled right-hand side: ``bind``/``rhs``/``jac`` are the C functions'
    addresses (``jac`` 0 where the model has no generated Jacobian), ``n_states``/``n_bound``
    their sizes; ``atoms`` the trigger atoms' function (``n_atoms`` of them; 0 for a model
    built without events); ``cached`` whether the library came from the disk
    cache, ``build_s`` the seconds spent generating and compiling it (0 when cached)."""

    bind: int
    rhs: int
    jac: int
    n_states: int
    n_bound: int
    cached: bool
    build_s: float
    path: Path
    atoms: int = 0
    n_atoms: int = 0


def cache_dir() -> Path:
    """The library cache folder (created on first use)."""
    return cbuild.cache_dir("native", CACHE_ENV)


def _compiler() -> str:
    cc = cbuild.compiler()
    if cc is None or not cbuild.compiler_available():
        raise ModelError("the native solver needs a working C compiler (set $CC or install gcc/clang)")
    return cc


def built_library(stem: str, source: str) -> ctypes.CDLL:
    """``source`` built once per machine into the cache as ``<stem>_<key>.so`` (the key hashes the
    source, the compiler and its flags) and loaded."""
    path = cache_dir() / f"{stem}_{cbuild.library_key(source)}.so"
    if not path.exists():
        cbuild.compile_library(_compiler(), source, path)
    return cbuild.load(path)


@lru_cache(maxsize=1)
def _integrator_library() -> ctypes.CDLL:
    return built_library("integrator", integrator_source())


@lru_cache(maxsize=1)
def integrator() -> ctypes._CFuncPtr:
    """The integrator's ``neuroplex_solve`` (built once per machine, loaded once per process)."""
    fn = _integrator_library().neuroplex_solve
    fn.restype = ctypes.c_int64
    fn.argtypes = _SIGNATURE
    return fn


@lru_cache(maxsize=1)
def event_integrator() -> ctypes._CFuncPtr:
    """The integrator's ``neuroplex_solve_events``: ``neuroplex_solve`` stopping at the first
    crossing of a model's trigger-atom columns (``integrator.c``)."""
    fn = _integrator_library().neuroplex_solve_events
    fn.restype = ctypes.c_int64
    fn.argtypes = _EVENTS_SIGNATURE
    return fn


def library_path(model: ModelIR, atoms: Sequence[sympy.Basic] = ()) -> Path:
    """Where ``model``'s library (with trigger atoms ``atoms``) is (or will be) cached."""
    return cache_dir() / f"sbml_{cbuild.library_key(model_key(model, atoms), MODEL_FLAGS)}.so"


def native_library(model: ModelIR, atoms: Sequence[sympy.Basic] = ()) -> NativeLibrary:
    """``model``'s library (with ``model_atoms`` for the trigger atoms ``g = lhs - rhs`` given),
    from this process's memory, the disk cache, or built now
    (:class:`~neuroplex.errors.ModelError` without a working compiler; the printer's
    :class:`~neuroplex.errors.NotPrintableError` for an expression C cannot take)."""
    own = model.__dict__.get("_native_library")
    if isinstance(own, NativeLibrary) and own.n_atoms == len(atoms):
        return own
    cc = _compiler()
    start = time.perf_counter()
    path = library_path(model, atoms)
    cached = path.exists()
    if not cached:
        cbuild.compile_library(cc, model_source(model, atoms).text, path, MODEL_FLAGS)
    lib = cbuild.load(path)
    sizes = (ctypes.c_int64 * 3)()
    lib.model_sizes(sizes)
    lib.model_n_atoms.restype = ctypes.c_int64
    addr = [ctypes.cast(fn, ctypes.c_void_p).value or 0
            for fn in (lib.model_bind, lib.model_rhs, lib.model_jac, lib.model_atoms)]
    out = NativeLibrary(addr[0], addr[1], addr[2] if sizes[2] else 0, int(sizes[0]), int(sizes[1]), cached,
                        0.0 if cached else time.perf_counter() - start, path, addr[3], int(lib.model_n_atoms()))
    model.__dict__["_native_library"] = out
    return out
