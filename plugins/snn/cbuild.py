"""The spiking engine's C libraries: built and cached by :mod:`neuroplex.cbuild` in
``$NEUROPLEX_SNN_CACHE`` (default ``$XDG_CACHE_HOME/neuroplex/snn``, i.e. ``~/.cache/neuroplex/snn``).

See :mod:`neuroplex.cbuild` for the compiler, flags and cache rules.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

from neuroplex import cbuild
from neuroplex.cbuild import compiler_available, vector_math
from neuroplex.errors import ModelError

__all__ = ["CACHE_ENV", "build", "cache_dir", "compiler_available", "library_path", "vector_math"]

#: environment variable naming the library cache folder
CACHE_ENV = "NEUROPLEX_SNN_CACHE"


def cache_dir() -> Path:
    """The library cache folder (created on first use)."""
    return cbuild.cache_dir("snn", CACHE_ENV)


def library_path(source: str) -> Path:
    """Where the library of ``source`` is (or will be) cached."""
    return cbuild.library_path(source, cache_dir(), "snn")


def build(source: str, *, symbol: str = "neuroplex_run") -> tuple[ctypes._CFuncPtr, bool]:
    """Compile ``source`` (or find it in the cache), load it and return ``(function, cached)``:
    the C function ``symbol`` taking ``(int64, int64, void**, int64*)`` and returning int64,
    and whether the library came from the cache."""
    if cbuild.compiler() is None:
        raise ModelError("the C engine needs a C compiler (set $CC or install gcc/clang), or run "
                         "with backend='torch'")
    text = "#include <stdint.h>\n" + source if "stdint.h" not in source else source
    lib, cached = cbuild.build(text, cache_dir(), "snn")
    fn = getattr(lib, symbol)
    fn.restype = ctypes.c_int64
    if symbol == "neuroplex_run":
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
    return fn, cached
