"""Lockstep native ensembles: :data:`LANES` samples advanced together (``lanes.c``), with each
model's right-hand side built a second time as ``model_rhs_lanes``, which evaluates it for all
lanes at once with its math functions vectorised across them (glibc's libmvec, through the
compiler's ``#pragma omp simd``).

``model_rhs_lanes`` is made from the model library's own C source (``csource.model_source``,
kept beside the library in the cache): the body of ``model_rhs`` with each ``y[i]``, ``p[i]``,
``k[i]``, ``dy[i]`` read lane-major (``[i * NP_L]``, the lane's base added), inlined into a
``simd`` loop over the lanes. Where the source has another shape, the compiler has no vector
math, or the build fails, :func:`lanes_rhs` says None and the ensemble runs sample by sample
(``ensemble.c``); results are the same to the integration's tolerance either way (the vector
math functions may round differently in the last bit, see ``lanes.c``).

On BIOMD0000000020 (Hodgkin-Huxley, 7 ``exp`` per call) one lane call costs about a fifth of 8
scalar calls, on BIOMD0000000012 (3 ``pow``) under half.
"""
from __future__ import annotations

import ctypes
import re
from functools import lru_cache
from importlib import resources

from neuroplex import cbuild
from neuroplex.errors import ModelError

from .library import NativeLibrary, built_library, cache_dir

#: samples a lockstep loop advances together (``NP_L`` in ``lanes.c``)
LANES = 8
#: math functions called through their vector versions (glibc's libmvec has these since 2.22,
#: ``expm1`` since 2.35: the compiler's probe, :func:`neuroplex.cbuild.vector_math`, builds it)
VECTOR_FUNCTIONS = ("exp", "expm1", "log", "pow", "sin", "cos")
_RHS = re.compile(r"void model_rhs\(double t, const double \*y, const double \*p, const double \*k, double \*dy\) "
                  r"\{\n(.*?)\n\}\n", re.S)
_INDEX = re.compile(r"\b(y|p|k|dy)\[(\d+)\]")
_OTHER_INDEX = re.compile(r"\b(y|p|k|dy)\[(?!\d+ \* NP_L\])")
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
#: ``neuroplex_solve_lanes``'s arguments (``lanes.c``)
_SIGNATURE = [_P, _P, _P, _P, _P, _I, _I, _I, _I, _P, _I, _P, _D, _D, _P, _I, _D, _P, _I, _D, _D, _D, _I, _I, _P, _P,
              _P, _P, _I]


def _declarations() -> str:
    arity = {"pow": "double, double"}
    return "".join(f"#pragma omp declare simd notinbranch\ndouble {name}({arity.get(name, 'double')});\n"
                   for name in VECTOR_FUNCTIONS)


def lanes_source(model_c: str) -> str | None:
    """A model library's C source with ``model_rhs_lanes(t[NP_L], y, p, k, dy)`` added (arrays
    lane-major: value ``i`` of lane ``l`` at ``[i * NP_L + l]``), or None where ``model_rhs`` is
    not in the generated form this rewrites."""
    found = _RHS.search(model_c)
    if found is None or "#include <math.h>\n" not in model_c:
        return None
    body = _INDEX.sub(lambda m: f"{m.group(1)}[{m.group(2)} * NP_L]", found.group(1))
    if _OTHER_INDEX.search(body):
        return None
    head = f"#include <math.h>\n#define NP_L {LANES}\n" + _declarations()
    return (model_c.replace("#include <math.h>\n", head, 1)
            + "static inline void np_rhs_lane(double t, const double *y, const double *p, const double *k, "
              "double *dy) {\n" + body + "\n}\n"
            + "void model_rhs_lanes(const double *t, const double *restrict y, const double *restrict p, "
              "const double *restrict k, double *restrict dy) {\n#pragma omp simd\n"
              "    for (int l = 0; l < NP_L; ++l) np_rhs_lane(t[l], y + l, p + l, k + l, dy + l);\n}\n")


@lru_cache(maxsize=64)
def _lanes_address(model_c_path: str) -> int | None:
    try:
        with open(model_c_path, encoding="utf-8") as fh:
            source = lanes_source(fh.read())
    except OSError:
        return None
    cc = cbuild.compiler()
    if source is None or cc is None:
        return None
    path = cache_dir() / f"lanes_{cbuild.library_key(source)}.so"
    try:
        if not path.exists():
            cbuild.compile_library(cc, source, path)
        fn = cbuild.load(path).model_rhs_lanes
    except (ModelError, OSError, AttributeError):
        return None
    return ctypes.cast(fn, ctypes.c_void_p).value


def lanes_rhs(lib: NativeLibrary) -> int | None:
    """The address of ``model_rhs_lanes`` for ``lib``'s model (built once per model and machine,
    cached beside its library), or None: no vector math here, or a source this cannot rewrite."""
    if not cbuild.vector_math():
        return None
    return _lanes_address(str(lib.path.with_suffix(".c")))


def loop_source() -> str:
    """The lockstep loop's C source (``lanes.c`` beside this module)."""
    return resources.files(__package__).joinpath("lanes.c").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def lanes_loop() -> ctypes._CFuncPtr:
    """``neuroplex_solve_lanes`` (built once per machine, loaded once per process)."""
    fn = built_library("lanes_loop", loop_source()).neuroplex_solve_lanes
    fn.restype = ctypes.c_int64
    fn.argtypes = _SIGNATURE
    return fn
