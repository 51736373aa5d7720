"""The ``torch`` solver: :class:`TorchSolver` wires models (ModelIR or Dynamics) to the
batched step loop (:mod:`.loop`) and the equilibrium methods (:mod:`.equilibrium`); other model
kinds go to their registered runners with :meth:`TorchSolver.integrator`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from neuroplex.batching import batch_size
from neuroplex.config import resolve_device
from neuroplex.dynamics import Dynamics, check_event_options
from neuroplex.errors import NeuroplexError, SolverError
from neuroplex.integration import AutoPolicy
from neuroplex.ir import ModelIR
from neuroplex.kinds import Model
from neuroplex.runners import route
from neuroplex.settings import FUSED_AUTO, Execution, StepControl, as_dtype
from neuroplex.solution import Solution, SpikeTrain, Status
from neuroplex.solver import Solver

from .events import EventSpec
from .distance import ACCEPT, accept_by_distance
from .equilibrium import EquilibriumProblem, EquilibriumSettings
from .integrator import TorchIntegrator
from .loop import run_loop
from .methods import get_method, has_method, method_names
from .refractory import Refractory
from .state import LoopResult

#: the method name of :data:`AUTO_POLICY`
AUTO = "auto"
#: ``method="auto"`` for every model kind: dopri5 steps within which a sample that its stiffness
#: test flags must be on pace to finish, else it is stiff and rerun with rosenbrock
AUTO_STEP_BUDGET = 2000
AUTO_POLICY = AutoPolicy(first="dopri5", fallback="rosenbrock", step_budget=AUTO_STEP_BUDGET)


class _MethodList:
    """``TorchSolver.methods``: the method table's current names (new methods show up)."""

    def __get__(self, obj: Any, owner: Any = None) -> tuple[str, ...]:
        names = [*method_names("simulate"), AUTO, *method_names("equilibrate")]
        return tuple(names + [m for m in method_names("clock") if m not in names])


class TorchSolver(Solver):
    """Batched PyTorch integrators (euler, heun, rk4, dopri5, dop853, rosenbrock) with per-sample
    step control and events, and equilibrium solvers (iteration, damped, anderson, ode).

    ``method``: a simulate method (default ``"dopri5"``) or an equilibrate method (default
    ``"iteration"``); a simulate method given to ``equilibrate`` runs the ODE to steady state.
    ``"auto"``: dopri5, and rosenbrock for the samples that turn out stiff (:data:`AUTO_POLICY`,
    for every model: the default of SBML models, whose runner applies it with their events).
    ``rtol``/``atol``: adaptive error control. ``dt``: the fixed step (euler/heun/rk4; default
    span/1000) or the first step of adaptive methods. ``dt_min``/``dt_max``/``max_steps``:
    step limits. ``device``: ``"cpu" | "cuda" | "auto"``; ``dtype``: ``"float64" | "float32"``. Left at None
    they follow a Dynamics' own ``dtype``/``device`` (or, for hand-written Dynamics without
    them, the given ``y0``/``params`` tensors); ModelIR models run in float64 on the CPU. Equilibrium: ``tol`` (residual),
    ``max_iter``, ``damping``, ``anderson_m``, ``ode_method``, ``check_every`` (iteration/damped:
    the residual is checked, one host sync, every that many iterations and at ``max_iter``).
    ``workers``: CPU processes a batch of SBML parameter sets is split over (one torch thread
    each; see :mod:`neuroplex.shards`). ``fused=True``: dopri5 and dop853 run each step of an SBML model as one
    compiled kernel (:mod:`.fused`, :mod:`.fused_loop`): seconds to minutes to compile once per
    model (cached on disk), then about 1.5-5x the throughput on large ensembles (other models: an
    error); ``False``: eager steps; ``"auto"`` (default): SBML batches choose the native
    ensemble, fused or eager steps per call (:func:`neuroplex.sbml.runner.auto_path`), other
    models run eager steps.
    """

    name = "torch"
    capabilities = frozenset({"simulate", "equilibrate"})
    #: SBML models and spiking networks run through their plugins' runners (``solver.integrator()``)
    accepts = frozenset({"ir", "dynamics"})
    #: threshold/reset events (located inside a step, spikes recorded) and refractory periods
    #: (:mod:`.refractory`); checked by the host (:mod:`neuroplex.features`)
    supports = frozenset({"events", "spikes", "refractory"})
    devices = frozenset({"cpu", "cuda"})
    dtypes = frozenset({"float32", "float64"})
    #: ``method="auto"``: dopri5, rosenbrock for the samples its stiffness test stops (every model
    #: kind: IR models and Dynamics here, SBML models in their runner)
    auto_policy: ClassVar[AutoPolicy] = AUTO_POLICY
    methods = _MethodList()  # type: ignore[assignment]

    def __init__(self, method: str | None = None, *, rtol: float = 1e-6, atol: float = 1e-9,
                 dt: float | None = None, dt_min: float = 0.0, dt_max: float | None = None,
                 max_steps: int = 100_000, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, tol: float = 1e-6, max_iter: int = 1000,
                 damping: float = 0.5, anderson_m: int = 5, ode_method: str = "dopri5", check_every: int = 5,
                 accept: str = "distance", distance_rtol: float = 1e-3, distance_atol: float = 1e-6,
                 workers: int = 1, fused: bool | str = FUSED_AUTO):
        if method not in (None, AUTO) and not any(has_method(method, kind) for kind in ("simulate", "equilibrate", "clock")):
            raise NeuroplexError(f"torch solver: unknown method {method!r}; simulate: "
                                 f"{', '.join(method_names('simulate'))}; equilibrate: "
                                 f"{', '.join(method_names('equilibrate'))}; models that run themselves: "
                                 f"{', '.join(method_names('clock'))}")
        if not has_method(ode_method, "simulate"):
            raise NeuroplexError(f"torch solver: unknown ode_method {ode_method!r}; known: {', '.join(method_names('simulate'))}")
        if accept not in ACCEPT:
            raise NeuroplexError(f"torch solver: accept must be one of {', '.join(ACCEPT)}, got {accept!r}")
        if not (float(distance_rtol) >= 0 and float(distance_atol) >= 0 and float(distance_rtol) + float(distance_atol) > 0):
            raise NeuroplexError(f"torch solver: distance_rtol and distance_atol must be >= 0 and not both 0, "
                                 f"got {distance_rtol}, {distance_atol}")
        if int(check_every) < 1:
            raise NeuroplexError(f"torch solver: check_every must be >= 1, got {check_every}")
        #: the method as given (None: each model's default, ``dopri5`` but ``auto`` for SBML models)
        self.requested_method = method
        self.method = method or "dopri5"
        try:
            #: step control, handed unchanged to runners and integrators
            self.control = StepControl(rtol=float(rtol), atol=float(atol), dt0=None if dt is None else float(dt),
                                       dt_min=float(dt_min), dt_max=None if dt_max is None else float(dt_max),
                                       max_steps=int(max_steps))
            #: where runs execute
            self.execution = Execution(device=resolve_device(device) if device is not None else None,
                                       dtype=as_dtype(dtype), workers=int(workers),
                                       fused=fused if isinstance(fused, str) else bool(fused))
        except NeuroplexError as exc:
            raise NeuroplexError(f"torch solver: {exc}") from None
        c = self.control
        self.eq = EquilibriumSettings(tol=float(tol), max_iter=int(max_iter), damping=float(damping),
                                      anderson_m=int(anderson_m), ode_method=ode_method, rtol=c.rtol,
                                      atol=c.atol, dt=c.dt0, dt_max=c.dt_max, max_steps=c.max_steps,
                                      check_every=int(check_every), accept=accept,
                                      distance_rtol=float(distance_rtol), distance_atol=float(distance_atol))

    def integrator(self) -> TorchIntegrator:
        """The functional integrator runners use (:class:`neuroplex.integration.Integrator`)."""
        return TorchIntegrator(fused=self.execution.fused_steps)

    # ------------------------------------------------------------------ setup
    def _placement(self, model: Any, *tensors: Any) -> tuple[torch.dtype, torch.device]:
        """The solver's dtype/device if set; else a Dynamics' own ``dtype``/``device``, else (for
        hand-written Dynamics) those of the given tensors; else float64 on CPU."""
        dtype, device = self.execution.dtype, self.execution.device
        if isinstance(model, Dynamics):
            own_dtype, own_device = getattr(model, "dtype", None), getattr(model, "device", None)
            dtype = dtype or (own_dtype if isinstance(own_dtype, torch.dtype) else None)
            device = device or (torch.device(own_device) if isinstance(own_device, (str, torch.device)) else None)
            for x in tensors:
                if isinstance(x, torch.Tensor):
                    if dtype is None and x.is_floating_point():
                        dtype = x.dtype
                    if device is None:
                        device = x.device
        return dtype or torch.float64, device or torch.device("cpu")

    def _dynamics(self, model: Any, dtype: torch.dtype, device: torch.device) -> Dynamics:
        if isinstance(model, Dynamics):
            return model
        if isinstance(model, ModelIR):
            return model.compile(dtype=dtype, device=device)
        raise SolverError(f"torch solver: cannot run a {type(model).__name__}; give a ModelIR or a Dynamics")

    @staticmethod
    def _batch(name: str, x: torch.Tensor, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != dtype or x.device != device:
            x = torch.as_tensor(x).to(dtype=dtype, device=device)
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.shape[-1] != width:
            raise SolverError(f"torch solver: {name} must be ({width},) or (batch, {width}), got {tuple(x.shape)}")
        return x

    def _prepare(self, dyn: Dynamics, y0: Any, params: Any, inputs: Any, dtype: torch.dtype,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        n_p = len(dyn.param_names)
        p = self._batch("params", dyn.default_params(dtype=dtype, device=device) if params is None else params,
                        n_p, dtype, device)
        y = None if y0 is None else self._batch("y0", y0, dyn.n_states, dtype, device)
        u = None if inputs is None else self._batch("inputs", inputs, len(dyn.input_names), dtype, device)
        b = batch_size(params=p, y0=y, inputs=u)  # the one rule (neuroplex.batching)
        if y is None:
            y = self._batch("y0", dyn.initial_state(p, dtype=dtype, device=device), dyn.n_states, dtype, device)
        p, y = p.expand(b, -1), y.expand(b, -1)
        if u is not None:
            u = u.expand(b, -1)
        return y, p, u

    # --------------------------------------------------------------- simulate
    def simulate(self, model: Model, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
        """Integrate ``model`` over ``t_span``; outputs at ``t_eval`` (default: both ends) by
        the method's dense output. States then observables in ``ys``; events in ``spikes``."""
        runner = route(model, self)
        if runner is not None:  # SBML models, spiking networks: the plugin's runner (it validates the method)
            return runner.run(model, self, t_span, y0=y0, params=params, t_eval=t_eval, inputs=inputs,
                              progress=progress)
        if self.execution.workers > 1:
            raise SolverError(f"torch solver: workers={self.execution.workers} splits batches of SBML models over "
                              f"processes; {type(model).__name__} models run in this process (use workers=1)")
        if self.execution.fused_steps:
            raise SolverError(f"torch solver: fused=True compiles the steps of SBML models (their generated "
                              f"right-hand side); {type(model).__name__} models run eager steps (leave fused off, "
                              f"or call integrate(..., fused=True) with a right-hand side that sets f.traceable)")
        if self.requested_method not in (None, AUTO) and not has_method(self.requested_method, "simulate"):
            what = "an equilibrium method" if has_method(self.requested_method, "equilibrate") else \
                "a clock-driven method of models that run themselves (spiking networks)"
            raise SolverError(f"torch solver: {self.requested_method!r} is {what}; simulate methods: "
                              f"{', '.join(method_names('simulate'))}")
        dtype, device = self._placement(model, y0, params)
        dyn = self._dynamics(model, dtype, device)
        y, p, u = self._prepare(dyn, y0, params, inputs, dtype, device)
        b = y.shape[0]
        t0, t1 = float(t_span[0]), float(t_span[1])
        if not t1 >= t0:
            raise SolverError(f"torch solver: t_span must have t1 >= t0, got ({t0}, {t1})")
        te = torch.tensor([t0, t1] if t1 > t0 else [t0], dtype=dtype, device=device) if t_eval is None else \
            torch.as_tensor(t_eval).to(dtype=dtype, device=device).flatten().contiguous()
        if te.numel() > 1 and bool((te[1:] < te[:-1]).any()):
            raise SolverError("torch solver: t_eval must be increasing")
        ir = model if isinstance(model, ModelIR) else getattr(dyn, "model", None)
        span = (t0, t1)
        if self.requested_method == AUTO:
            policy = self.auto_policy
            run = self._integrate(dyn, ir, y, p, u, span, te, policy.first, progress,
                                  stiff_stop=True, stiff_budget=policy.step_budget)
            redo = policy.needs_fallback(run.res.status)
            method = policy.label(bool(redo.any()))
            if bool(redo.any()):
                rows = torch.nonzero(redo).flatten()
                again = self._integrate(dyn, ir, y[rows], p[rows], None if u is None else u[rows], span, te,
                                        policy.fallback, progress)
                run = _merge(run, again, rows)
        else:
            method = self.method
            run = self._integrate(dyn, ir, y, p, u, span, te, method, progress)
        res = run.res
        ys = res.ys
        obs_names = list(dyn.observable_names)
        if obs_names:
            n_t = te.numel()
            tt = te[None, :].expand(b, n_t)
            pp = p[:, None, :].expand(b, n_t, p.shape[-1])
            uu = u[:, None, :].expand(b, n_t, u.shape[-1]) if u is not None else None
            ys = torch.cat([ys, dyn.observe(tt, ys, pp, uu)], -1)
        spikes = _spikes(res.event_log, [ev.name for ev in dyn.events], device) if dyn.events else None
        stats = {"n_steps": res.n_steps, "n_rhs": res.n_rhs, "t_end": res.t_end}
        if dyn.events:
            stats["event_stop"] = res.event_stop
        if run.uses_jacobian:
            stats["n_jac"] = torch.full((b,), res.n_jac, dtype=torch.long, device=device)
        return Solution(ys=ys, ts=te, names=[*dyn.state_names, *obs_names], status=res.status, stats=stats,
                        spikes=spikes, solver=self.name, method=method,
                        meta={"model": getattr(dyn, "name", "")})

    def _integrate(self, dyn: Dynamics, ir: ModelIR | None, y: torch.Tensor, p: torch.Tensor,
                   u: torch.Tensor | None, span: tuple[float, float], te: torch.Tensor, method: str,
                   progress: bool, *, stiff_stop: bool = False, stiff_budget: int | None = None) -> "_Run":
        """One step-loop run of ``method`` over the batch ``y, p, u`` (events and refractory
        periods included); the event log keeps model events only."""
        t0, t1 = span
        b, dtype, device = y.shape[0], y.dtype, y.device
        stepper = get_method(method, "simulate").factory()
        c = self.control
        dt0 = c.dt0
        if dt0 is None and not stepper.info.adaptive:
            dt0 = (t1 - t0) / 1000 if t1 > t0 else 1.0

        f = dyn.rhs_bound(p, u)  # compiled models: parameter-only work bound once, symbolic Jacobian
        events = _event_spec(dyn, p, u, device) if dyn.events else None
        y, fired_at_t0 = _fire_initial(dyn, t0, y, p, u) if dyn.events else (y, [])
        refractory = None
        if isinstance(ir, ModelIR) and ir.refractory is not None and events is not None:
            if fired_at_t0:
                raise SolverError(f"model {ir.name!r}: an event with initial_value=False fired at t0 and the "
                                  f"model has a refractory period; the torch solver starts every sample "
                                  f"non-refractory (give initial_value=True or no refractory period)")
            refractory = Refractory(ir, torch.full((b,), t0, dtype=dtype, device=device), y, p, u)
            f, events = refractory.rhs(f), refractory.events(events)
        res = run_loop(f, stepper, torch.full((b,), t0, dtype=dtype, device=device),
                       torch.full((b,), t1, dtype=dtype, device=device), y, rtol=c.rtol, atol=c.atol,
                       dt0=dt0, dt_min=c.dt_min, dt_max=c.dt_max, max_steps=c.max_steps, t_eval=te,
                       events=events, progress=progress, stiff_stop=stiff_stop, stiff_budget=stiff_budget)
        if refractory is not None and refractory.hidden_columns:  # the period's end is no spike
            n_ev = len(dyn.events)
            log = [(smp[col < n_ev], col[col < n_ev], tt[col < n_ev]) for smp, col, tt in res.event_log]
            res.event_log = [entry for entry in log if entry[0].numel()]
        res.event_log = fired_at_t0 + res.event_log
        return _Run(res, bool(stepper.info.jac_per_step))

    # ------------------------------------------------------------ equilibrate
    def equilibrate(self, model: Model, y0: torch.Tensor | None = None, *, params: torch.Tensor | None = None,
                    inputs: torch.Tensor | None = None) -> Solution:
        """Fixed point of ``model`` from ``y0`` with per-sample convergence; ``stats`` has
        ``iterations`` and ``residual`` per sample."""
        method, settings = self.requested_method or "iteration", self.eq
        if not has_method(method, "simulate") and not has_method(method, "equilibrate"):
            raise SolverError(f"torch solver: {method!r} is a clock-driven method of models that run themselves; "
                              f"equilibrate methods: {', '.join(method_names('equilibrate'))}")
        if has_method(method, "simulate"):
            method, settings = "ode", EquilibriumSettings(**{**vars(self.eq), "ode_method": method})
        solve = get_method(method, "equilibrate").factory
        dtype, device = self._placement(model, y0, params)
        dyn = self._dynamics(model, dtype, device)
        y, p, u = self._prepare(dyn, y0, params, inputs, dtype, device)
        problem = EquilibriumProblem(lambda yy: dyn.fixed_point_map(yy, p, u), lambda t, yy: dyn.rhs(t, yy, p, u))
        out = solve(problem, y, settings)
        far: dict[int, str] = {}
        if settings.accept == "distance":
            out, far = accept_by_distance(solve, problem, dyn, p, u, method, settings, out)
        status, reasons = _events_at_rest(dyn, out.y, p, u, out.status)
        reasons = {**far, **reasons}
        meta: dict[str, Any] = {"model": getattr(dyn, "name", "")}
        if reasons:
            meta["reasons"] = dict(sorted(reasons.items()))
        return Solution(ys=out.y, ts=None, names=list(dyn.state_names), status=status,
                        stats={"iterations": out.iterations, "residual": out.residual},
                        solver=self.name, method=method, meta=meta)


@dataclass
class _Run:
    """One step-loop run of :meth:`TorchSolver._integrate`; ``uses_jacobian``: its method
    evaluates Jacobians (``stats["n_jac"]``)."""

    res: LoopResult
    uses_jacobian: bool


def _merge(first: _Run, again: _Run, rows: torch.Tensor) -> _Run:
    """``first`` with the samples ``rows`` replaced by their rerun ``again`` (the ``auto``
    fallback): outputs, status, end points and event log from the rerun, step counts of both."""
    a, r = first.res, again.res
    if a.ys is not None and r.ys is not None:
        a.ys[rows] = r.ys
    a.status[rows] = r.status
    a.t_end[rows] = r.t_end
    a.y_end[rows] = r.y_end
    a.event_index[rows] = r.event_index
    a.event_stop[rows] = r.event_stop
    a.n_steps[rows] += r.n_steps
    a.n_rhs[rows] += r.n_rhs
    redone = torch.zeros_like(a.status, dtype=torch.bool)
    redone[rows] = True
    log = [(smp[~redone[smp]], col[~redone[smp]], tt[~redone[smp]]) for smp, col, tt in a.event_log]
    log += [(rows[smp], col, tt) for smp, col, tt in r.event_log]
    a.event_log = [entry for entry in log if entry[0].numel()]
    a.n_jac += r.n_jac
    return _Run(a, first.uses_jacobian or again.uses_jacobian)


def _fire_initial(dyn: Dynamics, t0: float, y: torch.Tensor, p: torch.Tensor, u: torch.Tensor | None
                  ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Events with ``initial_value=False`` whose trigger holds at ``t0`` fire there (SBML's
    rule; the scipy solver's too), in list order, before the first step; their log entries."""
    log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    t = torch.full((y.shape[0],), t0, dtype=y.dtype, device=y.device)
    for e, ev in enumerate(dyn.events):
        if (ev.options or {}).get("initial_value", True):
            continue
        fired = torch.broadcast_to(ev.trigger(t, y, p, u).reshape(-1), t.shape)
        if bool(fired.any()):
            y = torch.where(fired[:, None], ev.apply(t, y, p, u), y)
            rows = torch.nonzero(fired).flatten()
            log.append((rows, torch.full_like(rows, e), t[rows]))
    return y, log


def _events_at_rest(dyn: Dynamics, y: torch.Tensor, p: torch.Tensor, u: torch.Tensor | None,
                    status: torch.Tensor) -> tuple[torch.Tensor, dict[int, str]]:
    """``status`` with ``NOT_CONVERGED`` for converged samples whose fixed point lies where an
    event's trigger holds (a neuron settled past its threshold: the model with its events fires
    and resets there, so it never rests; the methods see only ``rhs``), and why, per sample."""
    if not dyn.events:
        return status, {}
    t = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
    with torch.no_grad():
        fires = torch.stack([torch.broadcast_to(ev.trigger(t, y.detach(), p, u).reshape(-1), t.shape)
                             for ev in dyn.events], -1)  # (batch, events)
    bad = fires.any(-1) & (status == Status.SUCCESS)
    if not bool(bad.any()):
        return status, {}
    status = torch.where(bad, torch.full_like(status, Status.NOT_CONVERGED), status)
    rows = fires.cpu()
    reasons = {b: (f"the fixed point of the right-hand side fires event(s) "
                   f"{', '.join(ev.name for e, ev in enumerate(dyn.events) if bool(rows[b, e]))} (the trigger "
                   f"holds there): no rest state of the model with its events")
               for b in torch.nonzero(bad).flatten().tolist()}
    return status, reasons


def _event_spec(dyn: Dynamics, p: torch.Tensor, u: torch.Tensor | None, device: torch.device) -> EventSpec:
    """Model events as continuous functions: ``root`` where the compiler found one, else the
    trigger as +-1 (located by bisection)."""
    evs = list(dyn.events)
    check_event_options(dyn, "torch")

    def g(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cols = []
        for ev in evs:
            if ev.root is not None:
                cols.append(ev.root(t, y, p, u))
            else:
                trig = ev.trigger(t, y, p, u)
                cols.append(torch.where(trig, torch.ones_like(y[:, 0]), -torch.ones_like(y[:, 0])))
        return torch.stack(cols, -1)

    def apply(t: torch.Tensor, y: torch.Tensor, fired: torch.Tensor) -> torch.Tensor:
        for e, ev in enumerate(evs):
            m = fired[:, e]
            if bool(m.any()):
                y = torch.where(m[:, None], ev.apply(t, y, p, u), y)
        return y

    bisect = torch.tensor([ev.root is None for ev in evs], dtype=torch.bool, device=device)
    terminal = torch.tensor([bool(ev.terminal) for ev in evs], dtype=torch.bool, device=device)
    return EventSpec(g, bisect, terminal, apply)


def _spikes(log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], names: list[str],
            device: torch.device) -> SpikeTrain:
    if not log:
        empty = SpikeTrain.empty(device)
        empty.names = names
        return empty
    smp = torch.cat([x[0] for x in log])
    idx = torch.cat([x[1] for x in log])
    tim = torch.cat([x[2] for x in log]).to(torch.float64)
    order = torch.argsort(tim, stable=True)
    return SpikeTrain(smp[order], idx[order], tim[order], names)
