"""Run single-neuron IR models (a batch of independent neurons) on Brian2.

A batch of B parameter sets / initial states / inputs becomes one ``NeuronGroup`` of B
neurons (per-neuron constants), so a batched torch run and a Brian2 run see the same
samples. States are recorded at the start of every step (Brian2's ``when='start'``, the
convention of the shared reference traces) and the final state is read after the run.
"""
from __future__ import annotations

import time as _time
from typing import Any, Callable

import numpy as np
import sympy
import torch

from neuroplex.batching import batch_size
from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR
from neuroplex.functions import exprel_numpy
from neuroplex.solution import Solution, SpikeTrain, Status

from .session import brian_session, progress_report, ran_targets, resolve_target
from .translate import NeuronSpec, model_time_scale, translate_neuron


def initial_values(model: ModelIR, params: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Initial states ``(B, n_states)`` from the IR's initial-value expressions, which may
    use parameters, inputs, assignments and other states (evaluated in dependency order)."""
    batch = params.shape[0]
    env: dict[str, Any] = {p: params[:, i] for i, p in enumerate(model.parameter_names)}
    env.update({k: inputs[:, i] for i, k in enumerate(model.inputs)})
    env[model.time.name] = np.zeros(batch)
    pending: dict[str, Any] = {s.name: s.initial for s in model.states}
    pending.update(model.assignments)
    funcs = [{"exprel": exprel_numpy}, "numpy"]
    while pending:
        progressed = False
        for key in list(pending):
            expr = pending[key]
            free = {s.name for s in getattr(expr, "free_symbols", ())}
            if free <= set(env):
                syms = sorted(free)
                fn = sympy.lambdify([sympy.Symbol(s) for s in syms], expr, modules=funcs)
                value = np.asarray(fn(*[env[s] for s in syms]), dtype=float)
                env[key] = np.broadcast_to(value, (batch,)).copy()
                del pending[key]
                progressed = True
        if not progressed:
            raise ModelError(f"model {model.name!r}: circular initial values among {', '.join(sorted(pending))}")
    return np.stack([env[s] for s in model.state_names], axis=1) if model.states else np.zeros((batch, 0))


def _rows(value: Any, width: int, what: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ModelError(f"brian2: {what} must have shape (n,) or (batch, n) with n = {width}, got {tuple(arr.shape)}")
    return arr


def grid_indices(t_eval: np.ndarray, t0: float, dt: float, n_steps: int) -> np.ndarray:
    """Step indices of output times on the grid ``t0 + k*dt`` (k = 0..n_steps)."""
    k = np.rint((t_eval - t0) / dt).astype(np.int64)
    if (k < 0).any() or (k > n_steps).any():
        raise ModelError(f"brian2: output times must lie in [{t0}, {t0 + n_steps * dt}]")
    return k


def dimension_error(exc: BaseException) -> BaseException | None:
    """The Brian2 ``DimensionMismatchError`` behind ``exc`` (Brian2 wraps errors), if any."""
    from brian2.units.fundamentalunits import DimensionMismatchError

    seen = exc
    while seen is not None:
        if isinstance(seen, DimensionMismatchError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _drop_unused_objects() -> None:
    """Collect the Brian2 objects of a failed attempt quietly (Brian2 warns about objects
    deleted without having been run)."""
    import gc

    from brian2.utils.logger import catch_logs

    with catch_logs():
        gc.collect()


def with_unit_fallback(attempt: Callable[[str], Any], units: str, what: str) -> Any:
    """Run ``attempt(units)``; in ``"auto"`` mode a Brian2 unit mismatch retries without
    units (``"none"``); in ``"si"`` mode it becomes a :class:`ModelError`."""
    try:
        return attempt(units)
    except Exception as exc:  # noqa: BLE001 - look for Brian2's unit error inside its wrapper
        dim = dimension_error(exc)
        if dim is None:
            raise
        if units == "si":
            raise ModelError(f"{what}: units do not match in Brian2: {dim}") from None
        if units != "auto":
            raise
    _drop_unused_objects()
    return attempt("none")


def run_neuron(model: ModelIR, t_span: tuple[float, float], *, dt: float | None, method: str | None,
               target: str, dtype: str, units: str, y0: Any = None, params: Any = None, inputs: Any = None,
               t_eval: Any = None, progress: bool = False, directory: str | None = None) -> Solution:
    """Simulate a batch of single neurons; see :class:`~neuroplex.plugins.brian2_backend.solver.Brian2Solver`."""
    from brian2 import second

    wall0 = _time.perf_counter()
    p = _rows(params, len(model.parameters), "params")
    y = _rows(y0, len(model.states), "y0")
    u = _rows(inputs, len(model.inputs), "inputs")
    batch = batch_size(params=p, y0=y, inputs=u)  # the one rule (neuroplex.batching)
    defaults = np.array([[q.value for q in model.parameters]], dtype=float).reshape(1, -1)
    p = np.broadcast_to(p if p is not None else defaults, (batch, len(model.parameters))).copy()
    u_def = np.array([list(model.inputs.values())], dtype=float).reshape(1, -1)
    u = np.broadcast_to(u if u is not None else u_def, (batch, len(model.inputs))).copy()
    per_neuron = list(model.parameter_names) if params is not None else []
    y = np.broadcast_to(y, (batch, len(model.states))).copy() if y is not None else initial_values(model, p, u)
    time_scale = model_time_scale(model)

    t0, t1 = float(t_span[0]), float(t_span[1])
    if t0 < 0 or t1 <= t0:
        raise ModelError(f"brian2: t_span must satisfy 0 <= t0 < t1, got {t_span}")
    if dt is None:
        dt = 1e-4 / time_scale
    n_steps = int(round((t1 - t0) / dt))
    if n_steps < 1:
        raise ModelError(f"brian2: t_span {t_span} is shorter than one step dt={dt}")
    dt_q = dt * time_scale * second
    te = np.array([t0, t1]) if t_eval is None else np.asarray(
        t_eval.detach().cpu().numpy() if isinstance(t_eval, torch.Tensor) else t_eval, dtype=float)
    k_out = grid_indices(te, t0, dt, n_steps)

    def attempt(mode: str) -> tuple[Any, ...]:
        spec = translate_neuron(model, units=mode, per_neuron=per_neuron, method=method,
                                target=resolve_target(target))
        return (spec, *_run_group(spec, batch, y, p, u, t0, n_steps, dt_q, target, dtype, progress, directory))

    spec, traces, sp_i, sp_t, loop, run_wall, ran = with_unit_fallback(attempt, units, f"model {model.name!r}")
    ys = torch.as_tensor(traces[:, k_out, :])
    finite = np.isfinite(traces[:, -1, :]).all(axis=1)
    status = torch.where(torch.as_tensor(finite), int(Status.SUCCESS), int(Status.NONFINITE)).to(torch.int64)
    order = np.lexsort((sp_i, sp_t))
    spikes = SpikeTrain(sample=torch.as_tensor(sp_i[order]), index=torch.zeros(len(order), dtype=torch.long),
                        time=torch.as_tensor(sp_t[order], dtype=torch.float64))
    return Solution(
        ys=ys, ts=torch.as_tensor(te, dtype=torch.float64), names=list(model.state_names), status=status,
        stats={"n_steps": torch.full((batch,), n_steps, dtype=torch.long)}, spikes=spikes, solver="brian2",
        method=spec.method or "auto", meta={
            "model": model.name, "target": ran, "target_requested": target, "dtype": dtype, "dt": dt,
            "units": spec.units,
            "loop_time": loop, "run_time": run_wall, "wall_time_s": _time.perf_counter() - wall0,
            "brian_equations": spec.equations, "brian_threshold": spec.threshold, "brian_reset": spec.reset,
        })


def _run_group(spec: NeuronSpec, batch: int, y: np.ndarray, p: np.ndarray, u: np.ndarray, t0: float,
               n_steps: int, dt_q: Any, target: str, dtype: str, progress: bool = False,
               directory: str | None = None) -> tuple[Any, ...]:
    """Build and run one NeuronGroup of ``batch`` neurons; traces ``(batch, n_steps+1, n_states)``."""
    from brian2 import Network, NeuronGroup, SpikeMonitor, StateMonitor, second

    model = spec.model
    with brian_session(target, dtype, directory) as session:
        method_arg = spec.method or ("exact", "euler", "heun")
        group = NeuronGroup(batch, spec.equations, threshold=spec.threshold, reset=spec.reset,
                            refractory=spec.refractory if spec.refractory is not None else False,
                            method=method_arg, namespace=spec.namespace, dt=dt_q, name="neuroplex_neurons")
        for i, name in enumerate(model.state_names):
            setattr(group, spec.names[name] + "_", y[:, i])
        for i, name in enumerate(model.parameter_names):
            if name in spec.per_neuron:
                setattr(group, spec.names[name] + "_", p[:, i])
        for i, name in enumerate(model.inputs):
            setattr(group, spec.names[name] + "_", u[:, i])
        brian_states = [spec.names[s] for s in model.state_names]
        smon = StateMonitor(group, brian_states, record=True, when="start", name="neuroplex_states") if brian_states else None
        spmon = SpikeMonitor(group, name="neuroplex_spikes") if spec.threshold is not None else None
        net = Network(*[o for o in (group, smon, spmon) if o is not None])
        if t0 > 0:
            for mon in (smon, spmon):
                if mon is not None:
                    mon.active = False
            net.run(t0 * spec.time_scale * second, namespace={})
            for mon in (smon, spmon):
                if mon is not None:
                    mon.active = True
        run0 = _time.perf_counter()
        report, close = progress_report(progress and not session.standalone, model.name)
        try:
            net.run(n_steps * dt_q, namespace={}, report=report, report_period=1 * second)
        finally:
            if close is not None:
                close()
        session.build()
        run_wall = _time.perf_counter() - run0
        loop = session.last_run_time()
        ran = ran_targets(net)
        traces = np.zeros((batch, n_steps + 1, len(brian_states)))
        for i, bname in enumerate(brian_states):
            rec = np.asarray(getattr(smon, bname + "_"), dtype=float)
            if rec.shape[1] < n_steps:
                raise ModelError(f"brian2 recorded {rec.shape[1]} of {n_steps} steps")
            traces[:, :n_steps, i] = rec[:, :n_steps]
            traces[:, n_steps, i] = np.asarray(getattr(group, bname + "_"), dtype=float)
        if spmon is not None:
            sp_i = np.asarray(spmon.i[:], dtype=np.int64)
            sp_t = np.asarray(spmon.t_[:], dtype=float) / spec.time_scale
        else:
            sp_i, sp_t = np.zeros(0, dtype=np.int64), np.zeros(0)

    return traces, sp_i, sp_t, loop, run_wall, ran
