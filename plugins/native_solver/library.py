"""A model's compiled library: built once per model and compiler, cached on disk, loaded with ctypes.

The library's file name is a hash of the model's equations (:func:`.csource.model_key`), the
compiler's identity and flags (:func:`neuroplex.cbuild.library_key`), so a process that finds
it skips generating the source as well as compiling. The folder is ``$NEUROPLEX_NATIVE_CACHE``,
default ``~/.cache/neuroplex/native`` (:func:`neuroplex.cbuild.cache_dir`).
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path

from neuroplex import cbuild
from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR

from .csource import model_key, model_source

#: environment variable naming the library cache folder
CACHE_ENV = "NEUROPLEX_NATIVE_CACHE"
_P = ctypes.c_void_p
_SIGNATURE = [_P, _P, ctypes.c_double, ctypes.c_double, _P, ctypes.c_int64, ctypes.c_double, _P, ctypes.c_double,
              ctypes.c_double, ctypes.c_double, ctypes.c_int64, ctypes.c_int64, _P, _P]


@dataclass(frozen=True)
class NativeLibrary:
    """A loaded model library: ``solve`` is the C ``neuroplex_solve``; ``cached`` whether it
    came from the disk cache, ``build_s`` the seconds spent generating and compiling (0 when
    cached), ``path`` the file."""

    solve: ctypes._CFuncPtr
    cached: bool
    build_s: float
    path: Path


def cache_dir() -> Path:
    """The library cache folder (created on first use)."""
    return cbuild.cache_dir("native", CACHE_ENV)


def library_path(model: ModelIR) -> Path:
    """Where ``model``'s library is (or will be) cached."""
    return cache_dir() / f"sbml_{cbuild.library_key(model_key(model))}.so"


def native_library(model: ModelIR) -> NativeLibrary:
    """``model``'s library, from this process's memory, the disk cache, or built now
    (:class:`~neuroplex.errors.ModelError` without a working compiler; the printer's
    :class:`.cprinter.NotCompilable` for an expression C cannot take)."""
    own = model.__dict__.get("_native_library")
    if isinstance(own, NativeLibrary):
        return own
    cc = cbuild.compiler()
    if cc is None or not cbuild.compiler_available():
        raise ModelError("the native solver needs a working C compiler (set $CC or install gcc/clang)")
    start = time.perf_counter()
    path = library_path(model)
    cached = path.exists()
    if not cached:
        cbuild.compile_library(cc, model_source(model).text, path)
    fn = cbuild.load(path).neuroplex_solve
    fn.restype = ctypes.c_int64
    fn.argtypes = _SIGNATURE
    lib = NativeLibrary(fn, cached, 0.0 if cached else time.perf_counter() - start, path)
    model.__dict__["_native_library"] = lib
    return lib
