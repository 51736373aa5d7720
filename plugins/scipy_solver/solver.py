"""``scipy`` solver: compiled neuroplex dynamics integrated by ``scipy.integrate.solve_ivp``.

The CPU stiff reference next to the torch solver. The right-hand side is the same compiled
torch function the torch solver uses, wrapped to take and return numpy arrays; implicit
methods (BDF, Radau, LSODA) get an exact Jacobian from torch autograd (one batched forward
and one backward pass: row ``i`` of a stacked copy of ``y`` only feeds output ``i``).
A batch of parameter sets or initial states runs as a loop over samples.

Events: models built in Python (spiking resets, thresholds) are handled here with
``solve_ivp`` root finding (a crossing of the event's root function, or of the trigger's
sign when it is a compound condition) followed by a restart from the reset state; those
events fire on the trigger's false-to-true transition, in list order; an event with a delay or
a priority is refused (``neuroplex.dynamics.check_event_options``).
Models read from SBML run through the SBML plugin's runner (``register_runners``), which
implements delays, priorities, persistence and ``useValuesFromTriggerTime``, with
:meth:`ScipySolver.integrator` (scipy's step-by-step solver classes) as its integrator.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from neuroplex.batching import batch_size
from neuroplex.dynamics import Dynamics, EventFunction, check_event_options
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.features import check_placement
from neuroplex.ir import ModelIR
from neuroplex.kinds import Model
from neuroplex.progress import progress_bar
from neuroplex.runners import route
from neuroplex.settings import Execution, StepControl
from neuroplex.solution import Solution, SpikeTrain, Status
from neuroplex.solver import Solver

from .integrator import IMPLICIT, METHODS, ScipyIntegrator, canonical_method



class NumpyRHS:
    """numpy wrappers around a torch ``rhs`` for one sample: ``f(t, y)`` and ``jac(t, y)``."""

    def __init__(self, dyn: Dynamics, p: torch.Tensor | None, u: torch.Tensor | None):
        self.dyn, self.p, self.u = dyn, p, u
        self.n = dyn.n_states
        self.n_rhs = 0
        self.n_jac = 0
        self._eye = torch.eye(self.n, dtype=torch.float64)
        self._pb = None if p is None else p.expand(self.n, -1)
        self._ub = None if u is None else u.expand(self.n, -1)

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.n_rhs += 1
        with torch.no_grad():
            yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))
            out = self.dyn.rhs(torch.tensor(float(t), dtype=torch.float64), yt, self.p, self.u)
        return out.numpy()

    def jac(self, t: float, y: np.ndarray) -> np.ndarray:
        """dF/dy (n, n) by one batched reverse pass: Y[i] = y, loss = sum_i F(Y)[i, i]."""
        self.n_jac += 1
        y_rows = torch.from_numpy(np.array(y, dtype=np.float64)).expand(self.n, -1).clone().requires_grad_(True)
        with torch.enable_grad():
            out = self.dyn.rhs(torch.tensor(float(t), dtype=torch.float64), y_rows, self._pb, self._ub)
            (out * self._eye).sum().backward()
        return y_rows.grad.numpy()


def _root_fn(ev: EventFunction, dyn: Dynamics, p: torch.Tensor | None, u: torch.Tensor | None) -> Callable:
    """A continuous function that crosses zero upwards where ``ev``'s trigger turns true."""

    def g(t: float, y: np.ndarray) -> float:
        with torch.no_grad():
            yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))
            tt = torch.tensor(float(t), dtype=torch.float64)
            if ev.root is not None:
                return float(ev.root(tt, yt, p, u))
            # compound trigger: +1 when true, -1 when false (brentq finds the jump)
            return 1.0 if bool(ev.trigger(tt, yt, p, u)) else -1.0

    g.direction = 1.0
    g.terminal = True
    return g


class ScipySolver(Solver):
    """scipy.integrate.solve_ivp (LSODA, BDF, Radau, RK45, DOP853): the CPU stiff reference."""

    name: ClassVar[str] = "scipy"
    capabilities: ClassVar[frozenset[str]] = frozenset({"simulate"})
    #: SBML models run through the SBML plugin's runner on :meth:`integrator`
    accepts: ClassVar[frozenset[str]] = frozenset({"ir", "dynamics"})
    #: threshold/reset events (root finding and restart, spikes recorded); no refractory periods
    supports: ClassVar[frozenset[str]] = frozenset({"events", "spikes"})
    devices: ClassVar[frozenset[str]] = frozenset({"cpu"})
    dtypes: ClassVar[frozenset[str]] = frozenset({"float64"})
    methods: ClassVar[Sequence[str]] = METHODS

    def __init__(self, method: str = "LSODA", rtol: float = 1e-8, atol: float = 1e-10,
                 max_step: float | None = None, first_step: float | None = None,
                 jacobian: bool = True, max_steps: int = 200_000, dtype: Any = None, device: Any = None):
        check_placement(self, device, dtype)
        self.method = canonical_method(method)
        self.rtol, self.atol = float(rtol), float(atol)
        self.max_step = float(max_step) if max_step is not None else np.inf
        self.first_step = first_step
        self.jacobian = bool(jacobian)
        self.max_steps = int(max_steps)
        #: step control, handed unchanged to runners and :meth:`integrator`
        self.control = StepControl(rtol=self.rtol, atol=self.atol, dt0=None if first_step is None else float(first_step),
                                   dt_max=None if math.isinf(self.max_step) else self.max_step, max_steps=self.max_steps)
        self.execution = Execution()

    def integrator(self) -> ScipyIntegrator:
        """The functional integrator runners use (:class:`neuroplex.integration.Integrator`)."""
        return ScipyIntegrator(first_step=self.first_step, jacobian=self.jacobian)

    # ------------------------------------------------------------------ API
    def simulate(self, model: Model, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
        t0, t1 = float(t_span[0]), float(t_span[1])
        ts = (torch.tensor([t0, t1], dtype=torch.float64) if t_eval is None
              else torch.as_tensor(t_eval, dtype=torch.float64).flatten())
        runner = route(model, self)
        if runner is not None:  # SBML models: the SBML plugin's runner, on this solver's integrator
            return runner.run(model, self, (t0, t1), y0=y0, params=params, t_eval=ts, inputs=inputs,
                              progress=progress)
        dyn = _compile(model)
        check_event_options(dyn, "scipy")
        p_b, y_b, u_b, batch = _batch(dyn, params, y0, inputs)
        n_obs = len(dyn.observable_names)
        ys = torch.full((batch, ts.numel(), dyn.n_states + n_obs), float("nan"), dtype=torch.float64)
        status = torch.zeros(batch, dtype=torch.long)
        n_rhs = torch.zeros(batch, dtype=torch.long)
        n_jac = torch.zeros(batch, dtype=torch.long)
        spikes: list[tuple[int, int, float]] = []
        for b in progress_bar(range(batch), desc="scipy", unit="sample", enabled=progress and batch > 1):
            p = None if p_b is None else p_b[b]
            u = None if u_b is None else u_b[b]
            fn = NumpyRHS(dyn, p, u)
            traj, code, log = self._run_sample(dyn, fn, y_b[b], p, u, t0, t1, ts)
            ys[b, :, : dyn.n_states] = traj
            if n_obs:
                with torch.no_grad():
                    ys[b, :, dyn.n_states:] = dyn.observe(ts, traj, p, u)
            status[b] = int(code)
            n_rhs[b], n_jac[b] = fn.n_rhs, fn.n_jac
            spikes.extend((b, i, t) for i, t in log)
        names = [*dyn.state_names, *dyn.observable_names]
        train = None
        if dyn.events:
            train = SpikeTrain(torch.tensor([s[0] for s in spikes], dtype=torch.long),
                               torch.tensor([s[1] for s in spikes], dtype=torch.long),
                               torch.tensor([s[2] for s in spikes], dtype=torch.float64),
                               names=[e.name for e in dyn.events])
        return Solution(ys=ys, ts=ts, names=names, status=status,
                        stats={"n_rhs": n_rhs, "n_jac": n_jac}, spikes=train, solver=self.name,
                        method=self.method, meta={"model": dyn.name, "rtol": self.rtol, "atol": self.atol})

    # ------------------------------------------------------------ integration
    def integrate(self, fn: NumpyRHS, t0: float, t1: float, y: np.ndarray, t_eval: np.ndarray,
                  events: Sequence[Callable] = ()) -> Any:
        """One ``solve_ivp`` call from ``t0`` to ``t1`` (events: terminal root functions)."""
        from scipy.integrate import solve_ivp

        kwargs: dict[str, Any] = dict(method=self.method, rtol=self.rtol, atol=self.atol, max_step=self.max_step)
        if self.first_step is not None:
            kwargs["first_step"] = min(float(self.first_step), t1 - t0)
        if self.jacobian and self.method in IMPLICIT:
            kwargs["jac"] = fn.jac
        t_eval = t_eval[(t_eval >= t0) & (t_eval <= t1)]
        return solve_ivp(fn, (t0, t1), y, t_eval=t_eval, events=list(events) or None, **kwargs)

    def _run_sample(self, dyn: Dynamics, fn: NumpyRHS, y0: torch.Tensor, p: torch.Tensor | None,
                    u: torch.Tensor | None, t0: float, t1: float, ts: torch.Tensor
                    ) -> tuple[torch.Tensor, Status, list[tuple[int, float]]]:
        t_out = ts.numpy()
        traj = np.full((t_out.size, dyn.n_states), np.nan)
        roots = [_root_fn(ev, dyn, p, u) for ev in dyn.events]
        y = y0.numpy().astype(np.float64)
        t = t0
        log: list[tuple[int, float]] = []
        # outputs exactly at t0 (before any event at t0)
        traj[t_out == t0] = y
        if dyn.events:  # triggers true at the start with initial_value=False fire at t0
            y, fired = self._fire_initial(dyn, y, t, p, u)
            log.extend((i, t) for i in fired)
        code = Status.SUCCESS
        stalled = 0  # events in a row that made no progress in time
        first = True
        while t < t1:
            res = self.integrate(fn, t, t1, y, t_out[t_out >= t] if first else t_out[t_out > t], roots)
            first = False
            t_seg = np.asarray(res.t, dtype=np.float64)  # scipy leaves a list when no output falls in the segment
            if t_seg.size:
                traj[np.searchsorted(t_out, t_seg)] = np.asarray(res.y).T
            if res.status == -1:
                return torch.from_numpy(traj), Status.FAILED, log
            if res.status == 0:
                break
            # an event: the earliest root
            t_ev = min(float(te[0]) for te in res.t_events if te.size)
            which = [i for i, te in enumerate(res.t_events) if te.size and float(te[0]) == t_ev]
            y_ev = res.y_events[which[0]][0]
            with torch.no_grad():
                tt = torch.tensor(t_ev, dtype=torch.float64)
                y_t = torch.from_numpy(np.array(y_ev, dtype=np.float64))
                for i in which:
                    log.append((i, t_ev))
                    y_t = dyn.events[i].apply(tt, y_t, p, u)
                    if dyn.events[i].terminal:
                        code = Status.EVENT_STOP
            y = y_t.numpy().copy()
            # the state right after the event stands for outputs exactly at t_ev
            traj[t_out == t_ev] = y
            stalled = stalled + 1 if t_ev <= t else 0
            if stalled > 1000:
                return torch.from_numpy(traj), Status.FAILED, log
            if code == Status.EVENT_STOP:
                break
            t = t_ev
            if t >= t1:
                break
        return torch.from_numpy(traj), code, log

    @staticmethod
    def _fire_initial(dyn: Dynamics, y: np.ndarray, t: float, p: torch.Tensor | None,
                      u: torch.Tensor | None) -> tuple[np.ndarray, list[int]]:
        fired: list[int] = []
        with torch.no_grad():
            tt = torch.tensor(t, dtype=torch.float64)
            y_t = torch.from_numpy(np.array(y, dtype=np.float64))
            for i, ev in enumerate(dyn.events):
                if not (ev.options or {}).get("initial_value", True) and bool(ev.trigger(tt, y_t, p, u)):
                    y_t = ev.apply(tt, y_t, p, u)
                    fired.append(i)
        return y_t.numpy().copy(), fired


def _compile(model: Any) -> Dynamics:
    if isinstance(model, ModelIR):
        if model.refractory is not None:
            raise ModelError(f"model {model.name!r}: the scipy solver does not implement refractory periods; "
                             "use solver='torch' or 'brian2'")
        return model.compile(dtype=torch.float64)
    if isinstance(model, Dynamics):
        return model
    raise ModelError(f"scipy solver cannot integrate a {type(model).__name__}")


def _batch(dyn: Dynamics, params: torch.Tensor | None, y0: torch.Tensor | None, inputs: torch.Tensor | None
           ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None, int]:
    """Per-sample parameters, initial states and inputs, all with a leading batch dimension."""
    p = None if params is None else torch.as_tensor(params, dtype=torch.float64)
    y = None if y0 is None else torch.as_tensor(y0, dtype=torch.float64)
    u = None if inputs is None else torch.as_tensor(inputs, dtype=torch.float64)
    batch = batch_size(params=p, y0=y, inputs=u)  # the one rule (neuroplex.batching)
    if p is None:
        p = dyn.default_params(dtype=torch.float64)
    if p.shape[-1] != len(dyn.param_names):
        raise NeuroplexError(f"params has {p.shape[-1]} values per sample; model {dyn.name!r} has "
                             f"{len(dyn.param_names)} parameters")
    p = p.expand(batch, -1)
    if y is None:
        with torch.no_grad():
            y = dyn.initial_state(p, dtype=torch.float64)
    y = y.expand(batch, -1)
    if y.shape[-1] != dyn.n_states:
        raise NeuroplexError(f"y0 has {y.shape[-1]} values per sample; model {dyn.name!r} has {dyn.n_states} states")
    if u is not None:
        u = u.expand(batch, -1)
    return p, y.contiguous(), u, batch

