"""Build generated C with the system compiler, cache the library on disk, load it.

A library is named by the hash of its source, the compiler's identity and the flags, and kept
in a cache folder given by the caller (:func:`cache_dir` gives ``$XDG_CACHE_HOME/neuroplex/<name>``,
i.e. ``~/.cache/neuroplex/<name>``, unless an environment variable names another) next to its
``.c`` file, so code built once compiles once per machine: a later process only generates the
source and loads the library. Files are written under temporary names and renamed into place,
so processes building the same source at once do not see half-written files. The compiler is
``$CC``, else ``cc``, ``gcc`` or ``clang`` on the ``PATH``; :func:`compiler_available` says
whether one works (callers run their torch code otherwise). Used by the spiking engine's C
backend (``neuroplex.plugins.snn``) and the compiled SBML solver (``neuroplex.plugins.native_solver``).

Flags: ``-O3 -march=native`` (the vector instructions of this CPU, as Brian2 compiles; the
CPU the compiler resolves ``native`` to is part of the library's name) with IEEE arithmetic
kept: ``-ffp-contract=off`` (no fused multiply-adds, so each operation rounds as torch's
element-wise kernels do), no ``-ffast-math``; ``-fno-math-errno`` and ``-fno-trapping-math``
only tell the compiler that no one reads ``errno`` or floating-point traps (results unchanged).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from .errors import ModelError

FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-std=c99")
NATIVE = "-march=native"
_LOADED: dict[str, ctypes.CDLL] = {}


def cache_dir(name: str, env: str | None = None) -> Path:
    """The library cache folder ``name`` (``$env`` if that variable is set), created on first use."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuroplex" / name
    path = Path((os.environ.get(env) if env else None) or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def compiler() -> str | None:
    """The C compiler command: ``$CC``, else the first of cc, gcc, clang on the PATH."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((path for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)


def _run(args: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=8)
def identity(cc: str) -> str:
    """The compiler's version line (empty when it does not run)."""
    out = _run([cc, "--version"])
    return out.stdout.strip().splitlines()[0] if out and out.returncode == 0 and out.stdout.strip() else ""


@lru_cache(maxsize=8)
def _native(cc: str) -> str:
    """What ``-march=native`` means on this machine (the compiler's expanded target options),
    or "" when the compiler does not take it."""
    out = _run([cc, NATIVE, "-###", "-E", "-x", "c", os.devnull])
    if out is None or out.returncode != 0:
        return ""
    lines = [line.strip() for line in out.stderr.splitlines()
             if ("march=" in line and not line.startswith("COLLECT")) or "-target-cpu" in line]
    return lines[-1] if lines else NATIVE


def flags(cc: str) -> tuple[str, ...]:
    """The flags a library is built with by ``cc``."""
    return FLAGS + ((NATIVE,) if _native(cc) else ()) + (("-fopenmp-simd",) if _vector_math(cc) else ())


def _libraries(cc: str) -> tuple[str, ...]:
    return (("-lmvec",) if _vector_math(cc) else ()) + ("-lm",)


#: declarations of the vector versions (glibc's libmvec) of the math functions generated loops
#: call most; a generated file that uses them puts these after its includes
VECTOR_MATH = """
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double expm1(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float expm1f(float);
#pragma omp declare simd notinbranch
float logf(float);
"""

_VECTOR_PROBE = "#include <math.h>" + VECTOR_MATH + """void probe(double *restrict y, float *restrict z, int n) {
#pragma omp simd
    for (int j = 0; j < n; ++j) y[j] = exp(y[j]) + expm1(y[j]) + log(y[j]);
#pragma omp simd
    for (int j = 0; j < n; ++j) z[j] = expf(z[j]) + expm1f(z[j]) + logf(z[j]);
}
"""


@lru_cache(maxsize=8)
def _vector_math(cc: str) -> bool:
    """Whether ``cc`` builds loops calling the vector ``exp``/``expm1``/``log`` of glibc's libmvec."""
    with tempfile.TemporaryDirectory(prefix="neuroplex_probe_") as folder:
        src = Path(folder) / "probe.c"
        src.write_text(_VECTOR_PROBE)
        args = [cc, *FLAGS, *((NATIVE,) if _native(cc) else ()), "-fopenmp-simd", "-o", str(Path(folder) / "probe.so"),
                str(src), "-lmvec", "-lm"]
        out = _run(args)
        if out is None or out.returncode != 0:
            return False
        try:
            ctypes.CDLL(str(Path(folder) / "probe.so"))
        except OSError:
            return False
    return True


def vector_math() -> bool:
    """Whether generated loops may call glibc's vector math functions (libmvec)."""
    cc = compiler()
    return cc is not None and _vector_math(cc)


@lru_cache(maxsize=8)
def _works(cc: str) -> bool:
    """Whether ``cc`` builds and this process loads a trivial library (checked once)."""
    if not identity(cc):
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="neuroplex_probe_") as folder:
            build("#include <stdint.h>\nint64_t neuroplex_probe(void) { return 42; }\n", Path(folder), "probe")
    except ModelError:
        return False
    return True


def compiler_available() -> bool:
    """Whether a working C compiler is at hand."""
    cc = compiler()
    return cc is not None and _works(cc)


def library_key(source: str, extra_flags: tuple[str, ...] = ()) -> str:
    """The hash naming the library of ``source`` built by this machine's compiler and flags
    (``extra_flags`` come after the defaults, e.g. a lower ``-O`` level)."""
    cc = compiler() or ""
    text = "\0".join([source, identity(cc), _native(cc), " ".join(flags(cc) + extra_flags)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def library_path(source: str, folder: Path, prefix: str) -> Path:
    """Where the library of ``source`` is (or will be) cached in ``folder``."""
    return folder / f"{prefix}_{library_key(source)}.so"


def load(path: Path) -> ctypes.CDLL:
    """The loaded library at ``path`` (loaded once per process)."""
    lib = _LOADED.get(str(path))
    if lib is None:
        lib = _LOADED[str(path)] = ctypes.CDLL(str(path))
    return lib


def build(source: str, folder: Path, prefix: str) -> tuple[ctypes.CDLL, bool]:
    """Compile ``source`` into ``folder`` (or find it there), load it and return
    ``(library, cached)``: whether the library came from the cache."""
    cc = compiler()
    if cc is None:
        raise ModelError("compiled code needs a C compiler (set $CC or install gcc/clang)")
    path = library_path(source, folder, prefix)
    cached = path.exists()
    if not cached:
        compile_library(cc, source, path)
    return load(path), cached


def compile_library(cc: str, text: str, path: Path, extra_flags: tuple[str, ...] = ()) -> None:
    """Build ``text`` with ``cc`` into the shared library ``path`` (atomically; the source is
    kept beside it as ``.c``); ``extra_flags`` follow the defaults. A failure raises
    :class:`~neuroplex.errors.ModelError` with the compiler's first lines of output."""
    folder = path.parent
    c_path = path.with_suffix(".c")
    fd, tmp_c = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".c", dir=folder)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp_c, c_path)
    fd, tmp_so = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".so", dir=folder)
    os.close(fd)
    try:
        out = subprocess.run([cc, *flags(cc), *extra_flags, "-o", tmp_so, str(c_path), *_libraries(cc)], capture_output=True, text=True,
                             timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        os.unlink(tmp_so)
        raise ModelError(f"{c_path}: the C compiler {cc!r} did not run: {exc}") from None
    if out.returncode != 0:
        os.unlink(tmp_so)
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise ModelError(f"{c_path}: the C compiler {cc!r} failed:\n" + "\n".join(lines[:20]))
    os.replace(tmp_so, path)
