"""Ahead-of-time compiled steps: a pure tensor function exported with ``torch.export`` and
compiled by AOTInductor into a shared library, called through its C++ runner.

Why not ``torch.compile``: each call of a ``torch.compile``d function costs about 75 µs on the
host whatever the batch (dynamo's guards, AOTAutograd's runtime wrappers, and inductor's Python
wrapper allocating each buffer), and the fused step loop (:mod:`.fused_loop`) calls its step
once per step of the slowest sample: 1600 times for a spiking Hodgkin-Huxley ensemble, 12% of
its time. The runner's call costs about 20 µs. What the guards checked is checked here once per
working batch instead (:func:`signature`): the step is built per structure, dtype, device and
layout of its inputs, with the rows of the working batch, the output times and the output
buffer's rows as its dynamic sizes; every other leaf (a float tolerance, the run's constants)
is compiled in.

Building costs what compiling costs (tens of seconds for a large model); the library is kept
in inductor's cache directory (``TORCHINDUCTOR_CACHE_DIR``) under a hash of the exported program,
so a later process only traces (about a second) and loads it.
"""
from __future__ import annotations

import collections
import hashlib
import os
import platform
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import torch
import torch.utils._pytree as pytree
from torch.export import Dim

#: a tensor's place in a signature: (dtype, device, per-row, sizes other than the rows, layout)
TensorSignature = tuple[Any, ...]


def _layout(x: torch.Tensor) -> str:
    if x.is_contiguous():
        return "rows"
    if x.dim() == 2 and x.stride(0) == 1 and x.stride(1) == x.shape[0]:
        return "columns"
    raise ValueError(f"an input of shape {tuple(x.shape)} with strides {x.stride()} is neither contiguous nor "
                     "column-major")


def signature(leaves: Sequence[Any], n_rows: int, dynamic: Sequence[bool]) -> tuple[Hashable, ...]:
    """What a built step is specific to: per leaf, a non-tensor's value, or a tensor's dtype,
    device, whether its first size is the working batch's rows, its other sizes, and its
    layout; ``dynamic[i]``: leaf ``i``'s first size is dynamic whatever it is."""
    out: list[Hashable] = []
    for x, dyn in zip(leaves, dynamic):
        if not isinstance(x, torch.Tensor):
            out.append(("value", type(x).__name__, x))
            continue
        per_row = not dyn and x.dim() > 0 and x.shape[0] == n_rows
        sizes = tuple(x.shape[1:] if (dyn or per_row) else x.shape)
        out.append((x.dtype, x.device.type, dyn, per_row, x.dim(), sizes, _layout(x)))
    return tuple(out)


def _tensors(x: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors of a tree of tuples and lists (named tuples included), in pytree's order."""
    if isinstance(x, torch.Tensor):
        out.append(x)
    elif isinstance(x, (tuple, list)):
        for v in x:
            _tensors(v, out)
    return out


def _builder(spec: pytree.TreeSpec) -> Callable[[Any], Any]:
    """``build(leaves iterator) -> tree`` for ``spec``, where its nodes are tuples, lists, named
    tuples and None (else :func:`torch.utils._pytree.tree_unflatten`'s generic walk)."""
    if spec.is_leaf():
        return next
    kind = spec.type
    parts = [_builder(child) for child in spec.children()]
    if kind is None or kind is type(None):
        return lambda leaves: None
    if kind is tuple:
        return lambda leaves: tuple(part(leaves) for part in parts)
    if kind is list:
        return lambda leaves: [part(leaves) for part in parts]
    if kind is collections.namedtuple and pytree.is_namedtuple_class(spec.context):
        cls = spec.context
        return lambda leaves: cls(*(part(leaves) for part in parts))
    raise TypeError(f"no fast rebuild for {kind.__name__}")


class AOTStep:
    """A built step: ``step(*tree)`` runs it on inputs of the structure it was built for (the
    tensors are passed, everything else was compiled in) and returns its output tree. Its
    structures are walked by plain recursion: pytree's generic walk costs about 20 µs a call."""

    def __init__(self, loader: Any, tree: tuple[Any, ...], out_spec: pytree.TreeSpec):
        self._run = loader.run
        tensors = [x for x in pytree.tree_leaves(tree) if isinstance(x, torch.Tensor)]
        walked = _tensors(tree, [])
        self._fast_in = len(walked) == len(tensors) and all(a is b for a, b in zip(walked, tensors))
        try:
            build = _builder(out_spec)
            self._out = lambda flat: build(iter(flat))
        except TypeError:
            self._out = lambda flat: pytree.tree_unflatten(flat, out_spec)

    def __call__(self, *tree: Any) -> Any:
        if self._fast_in:
            flat = _tensors(tree, [])
        else:
            flat = [x for x in pytree.tree_leaves(tree) if isinstance(x, torch.Tensor)]
        return self._out(self._run(flat))


#: built steps per right-hand side function (kept while it lives), then per signature
_BUILT: weakref.WeakKeyDictionary[Any, dict[Hashable, AOTStep]] = weakref.WeakKeyDictionary()


def step_for(owner: Any, fn: Callable[..., Any], tree: tuple[Any, ...], n_rows: int,
             dynamic: Sequence[bool], key: Hashable = ()) -> AOTStep:
    """The step computing ``fn(*tree)``, built on first use for ``tree``'s :func:`signature` (and
    ``key``: what else ``fn`` depends on) and kept while ``owner`` lives. ``dynamic``: per leaf of
    ``tree``, whether its first size varies independently of the rows (the output times, the
    output buffer)."""
    leaves = pytree.tree_leaves(tree)
    full_key = (key, pytree.tree_structure(tree), signature(leaves, n_rows, dynamic), torch.get_num_threads())
    built = _BUILT.setdefault(owner, {})
    step = built.get(full_key)
    if step is None:
        step = built[full_key] = build(fn, tree, n_rows, dynamic)
    return step


def build(fn: Callable[..., Any], tree: tuple[Any, ...], n_rows: int, dynamic: Sequence[bool]) -> AOTStep:
    """Export ``fn(*tree)`` with the working batch's rows and the ``dynamic`` leaves' first sizes
    dynamic, and compile it with AOTInductor (or load the library an earlier build left)."""
    leaves, spec = pytree.tree_flatten(tree)
    at = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
    out_spec: list[pytree.TreeSpec] = []

    class Step(torch.nn.Module):
        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
            full = list(leaves)
            for i, x in zip(at, tensors):
                full[i] = x
            out, shape = pytree.tree_flatten(fn(*pytree.tree_unflatten(full, spec)))
            out_spec[:] = [shape]
            return tuple(out)

    rows = Dim("rows", min=2)
    shapes = []
    for n, i in enumerate(at):
        x = leaves[i]
        if dynamic[i]:
            shapes.append({0: Dim(f"size{n}", min=2)})
        else:
            shapes.append({0: rows} if x.dim() > 0 and x.shape[0] == n_rows else None)
    tensors = tuple(leaves[i] for i in at)
    program = torch.export.export(Step(), tensors, dynamic_shapes=(tuple(shapes),), strict=False)
    path = _cached_package(program)
    return AOTStep(torch._inductor.aoti_load_package(str(path)).loader, tree, out_spec[0])


def _cached_package(program: torch.export.ExportedProgram) -> Path:
    """The AOTInductor package of ``program``: compiled once, then found by its hash."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    digest = hashlib.sha256()
    for part in (_program_text(program), torch.__version__, platform.machine(),
                 torch.backends.cpu.get_cpu_capability(), str(torch.get_num_threads())):
        digest.update(part.encode())
    for name, value in sorted(program.constants.items()):
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(cache_dir()) / "neuroplex-aot"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest.hexdigest()[:32]}.pt2"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(suffix=".pt2", dir=folder)
        os.close(fd)
        try:
            with warnings.catch_warnings():  # torch's own deprecation inside its packaging
                warnings.filterwarnings("ignore", message=".*LeafSpec", category=FutureWarning)
                torch._inductor.aoti_compile_and_package(program, package_path=tmp)
            os.replace(tmp, path)  # whole or not at all: a concurrent build writes the same file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def _program_text(program: torch.export.ExportedProgram) -> str:
    """What an exported program computes, as text: its graph's code, signature, size ranges and
    inputs (not where in the source each node came from, so a change elsewhere in a file keeps
    the cached library)."""
    inputs = [(node.name, str(node.meta["val"].shape), str(node.meta["val"].stride()), str(node.meta["val"].dtype),
               str(node.meta["val"].device)) for node in program.graph.nodes
              if node.op == "placeholder" and isinstance(node.meta.get("val"), torch.Tensor)]
    return "\n".join((program.graph_module.code, str(program.graph_signature), str(program.range_constraints),
                      repr(inputs)))
