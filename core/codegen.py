"""Sympy expressions to source code: one printer, :class:`ExpressionPrinter`, with two targets.

``target="torch"`` prints Python source over torch tensors (what compiled models, SBML programs
and the spiking engine's torch code run). Every free symbol is bound to a tensor before an
expression runs, and purely numeric sub-expressions are folded to Python floats at print time,
so each emitted function call receives at least one tensor. Piecewise becomes nested
``_rt.where``; relations and logic become element-wise tensor operations; helpers torch lacks
come from :mod:`neuroplex.runtime` (``_rt``). Symbols are renamed to safe local names, so model
ids that are Python keywords (``lambda``, ``in``) or shadow builtins are harmless.

``target="c"`` prints C99 in the run's precision (``double``, or ``float`` arithmetic for
``dtype=torch.float32``, as torch computes in that dtype): sympy's C99 arithmetic (the text
Brian2's C++ generator prints too), numbers at full precision, and the helpers of
:func:`c_helpers` (``np_exprel``, NaN-propagating ``np_max``/``np_min``, ``np_sign``) with
:mod:`neuroplex.runtime`'s semantics.

Two options of the C target serve models whose booleans are numbers (SBML): ``fold_numbers``
folds every numeric sub-expression to one double at print time (as the torch target does), and
``numeric_logic`` prints relations and logic as parenthesised 0/1 values whose operands are
tested against 0. Without them the C target prints what the spiking engine compiles (sympy's
C99 arithmetic, relations and logic). An expression the C target cannot print raises
:class:`~neuroplex.errors.NotPrintableError` naming it.

Both targets print the special functions of :mod:`neuroplex.functions` by their one definition
(``_rt.<name>`` / ``np_<name>``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import sympy
import torch
from sympy.codegen.ast import float32, float64, real
from sympy.printing.c import C99CodePrinter

from . import runtime
from .errors import ModelError, NotPrintableError
from .functions import EXPREL_SMALL, FUNCTIONS

#: the targets :class:`ExpressionPrinter` prints for
TARGETS = ("torch", "c")

#: torch-target calls of the functions that have a one-call torch or runtime form
_TORCH_CALLS: dict[type, str] = {
    sympy.exp: "torch.exp",
    sympy.sin: "torch.sin",
    sympy.cos: "torch.cos",
    sympy.tan: "torch.tan",
    sympy.asin: "torch.asin",
    sympy.acos: "torch.acos",
    sympy.atan: "torch.atan",
    sympy.sinh: "torch.sinh",
    sympy.cosh: "torch.cosh",
    sympy.tanh: "torch.tanh",
    sympy.asinh: "torch.asinh",
    sympy.acosh: "torch.acosh",
    sympy.atanh: "torch.atanh",
    sympy.Abs: "torch.abs",
    sympy.floor: "torch.floor",
    sympy.ceiling: "torch.ceil",
    sympy.sign: "_rt.sign",
    sympy.erf: "torch.erf",
    sympy.sec: "_rt.sec",
    sympy.csc: "_rt.csc",
    sympy.cot: "_rt.cot",
    sympy.asec: "_rt.asec",
    sympy.acsc: "_rt.acsc",
    sympy.acot: "_rt.acot",
    sympy.sech: "_rt.sech",
    sympy.csch: "_rt.csch",
    sympy.coth: "_rt.coth",
    sympy.asech: "_rt.asech",
    sympy.acsch: "_rt.acsch",
    sympy.acoth: "_rt.acoth",
    sympy.factorial: "_rt.factorial",
    sympy.gamma: "_rt.gamma",
}

#: C-target forms (``{f}`` the argument, ``{one}`` 1 in the precision, ``{s}`` the math.h suffix) of
#: the functions C99 lacks, with :mod:`neuroplex.runtime`'s semantics
_C_FORMS: dict[type, str] = {
    sympy.sec: "({one} / cos{s}({f}))",
    sympy.csc: "({one} / sin{s}({f}))",
    sympy.cot: "({one} / tan{s}({f}))",
    sympy.sech: "({one} / cosh{s}({f}))",
    sympy.csch: "({one} / sinh{s}({f}))",
    sympy.coth: "({one} / tanh{s}({f}))",
    sympy.asec: "acos{s}({one} / ({f}))",
    sympy.acsc: "asin{s}({one} / ({f}))",
    sympy.acot: "atan{s}({one} / ({f}))",
    sympy.asech: "acosh{s}({one} / ({f}))",
    sympy.acsch: "asinh{s}({one} / ({f}))",
    sympy.acoth: "atanh{s}({one} / ({f}))",
    sympy.factorial: "(exp{s}(lgamma{s}(({f}) + {one})) * (({f}) < -0.0 ? NAN : {one}))",
    sympy.gamma: "exp{s}(lgamma{s}({f}))",
}

_C_HELPERS = """/* exprel(x) = (exp(x) - 1)/x, 1 at 0: neuroplex.functions' definition */
{exprel}
static inline real np_max(real a, real b) {{ return (a != a || b != b) ? a + b : (a > b ? a : b); }}
static inline real np_min(real a, real b) {{ return (a != a || b != b) ? a + b : (a < b ? a : b); }}
static inline real np_sign(real x) {{ return x > 0 ? {one} : (x < 0 ? -{one} : x); }}
"""


def _rebuild_printer(cls: type, names: Mapping[str, str], functions: Mapping[str, str], target: str,
                     dtype: torch.dtype, fold_numbers: bool = False,
                     numeric_logic: bool = False) -> "ExpressionPrinter":
    printer = ExpressionPrinter.__new__(cls)
    ExpressionPrinter.__init__(printer, names, functions, target=target, dtype=dtype,
                               fold_numbers=fold_numbers, numeric_logic=numeric_logic)
    return printer


class ExpressionPrinter(C99CodePrinter):
    """Print a sympy expression for ``target`` (``"torch"`` or ``"c"``, see the module docstring),
    given a symbol-name to local-name map ``names``. ``functions``: extra sympy function names
    the torch target prints as calls of the given names; ``dtype``: the C target's precision;
    ``fold_numbers``/``numeric_logic``: the C target's options for SBML (module docstring).
    ``printer(expr) -> str``. A sympy :class:`~sympy.printing.codeprinter.CodePrinter` (through
    sympy's C99 printer, whose arithmetic the C target keeps); each ``_print_*`` method
    prints its node for both targets."""

    printmethod = "_neuroplex_code"

    def __init__(self, names: Mapping[str, str], functions: Mapping[str, str] | None = None, *,
                 target: str = "torch", dtype: torch.dtype = torch.float64, fold_numbers: bool = False,
                 numeric_logic: bool = False):
        if target not in TARGETS:
            raise ModelError(f"printer target must be one of {', '.join(TARGETS)}, not {target!r}")
        super().__init__({"type_aliases": {real: float32 if dtype == torch.float32 else float64}})
        self.names = dict(names)
        self.functions = dict(functions or {})
        self.target = target
        self.single = dtype == torch.float32
        self._real = "float" if self.single else "double"
        self._torch = target == "torch"
        self.fold_numbers = fold_numbers and not self._torch
        self.numeric_logic = numeric_logic and not self._torch
        self._suffix = "f" if self.single else ""

    def __call__(self, expr: sympy.Basic | float) -> str:
        return self._print(expr) if self._torch else self.doprint(expr)

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from its arguments: sympy's codegen type objects in the settings do not unpickle,
        # and compiled models (which hold printers) travel to Ray workers by pickle
        dtype = torch.float32 if self.single else torch.float64
        return (_rebuild_printer, (type(self), self.names, self.functions, self.target, dtype,
                                   self.fold_numbers, self.numeric_logic))

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if self._torch:
            if isinstance(expr, bool):
                return "True" if expr else "False"
            if isinstance(expr, (int, float)):
                return _num(float(expr))
            if isinstance(expr, sympy.logic.boolalg.BooleanAtom):
                return "True" if expr == sympy.true else "False"
            if getattr(expr, "is_number", False) and not expr.free_symbols and not isinstance(expr, sympy.Piecewise):
                return _num(_evaluate_number(expr))  # numbers folded: every call receives a tensor
        elif self.fold_numbers:
            if isinstance(expr, (bool, sympy.logic.boolalg.BooleanAtom)):
                return self._literal(1.0 if expr == sympy.true else 0.0)
            if isinstance(expr, (int, float)):
                return self._folded(float(expr))
            if getattr(expr, "is_number", False) and not expr.free_symbols and not isinstance(expr, sympy.Piecewise):
                return self._folded(_evaluate_number(expr, 17))
        return str(super()._print(expr, **kwargs))

    def _folded(self, value: float) -> str:
        """A folded number's literal, parenthesised when negative (``x - (-2.0)``, ``(-0.0)``)."""
        text = self._literal(value)
        return f"({text})" if text.startswith("-") else text

    def emptyPrinter(self, expr: object) -> str:
        if not self._torch:
            return str(super().emptyPrinter(expr))
        raise ModelError(f"cannot compile {type(expr).__name__} expression {expr}")

    def _print_not_supported(self, expr: object) -> str:
        if self._torch:
            return self.emptyPrinter(expr)
        raise NotPrintableError(f"no C translation of {type(expr).__name__} in {expr}")

    # ------------------------------------------------------------------ atoms
    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        try:
            return self.names[expr.name]
        except KeyError:
            if self._torch:
                raise ModelError(f"undefined symbol {expr.name!r}") from None
            raise NotPrintableError(f"undefined symbol {expr.name!r} in the generated step") from None

    def _print_Dummy(self, expr: sympy.Dummy) -> str:
        return self._print_Symbol(expr) if self._torch else str(super()._print_Dummy(expr))

    def _print_Float(self, expr: Any) -> str:  # C target only: the torch target folds numbers
        return self._literal(float(expr))

    def _literal(self, value: float) -> str:
        """A C literal of ``value``: float literals as doubles cast to float, the rounding torch
        does to a Python float."""
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            text = {"inf": "INFINITY", "-inf": "(-INFINITY)", "nan": "NAN"}[text]
        return f"(({self._real}){text})" if self.single else text

    def _print_Rational(self, expr: Any) -> str:  # folded to one number, as the torch target does
        return self._print_Float(sympy.Float(expr, 17))

    def _print_NumberSymbol(self, expr: Any) -> str:  # pi, E: a number, not a macro
        return self._print_Float(sympy.Float(float(expr)))

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "True" if self._torch else "1"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "False" if self._torch else "0"

    # ------------------------------------------------------------- arithmetic
    def _print_Add(self, expr: sympy.Add, order: Any = None) -> str:
        """torch: a sum with its negative terms subtracted (``a - 2.0 * b``, not ``a + (-2.0 * b)``:
        one operation less per term, and the same IEEE result since negation is exact)."""
        if not self._torch:
            return str(super()._print_Add(expr, order))
        plus, minus = [], []
        for a in expr.args:
            coeff, rest = a.as_coeff_Mul() if isinstance(a, sympy.Mul) else (sympy.S.One, a)
            if coeff.is_number and coeff.is_extended_negative and rest != 1:
                factors = rest.args if isinstance(rest, sympy.Mul) else (rest,)
                minus.append(self._print(rest) if coeff == -1 else self._print(sympy.Mul(-coeff, *factors, evaluate=False)))
            else:
                plus.append(self._print(a))
        text = " + ".join(plus) if plus else "-" + minus.pop(0)
        return "(" + text + "".join(f" - {m}" for m in minus) + ")"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        if not self._torch:
            return str(super()._print_Mul(expr))
        num, den = [], []
        for a in expr.args:
            if isinstance(a, sympy.Pow) and a.exp.is_number and a.exp.is_negative:
                den.append(self._print(sympy.Pow(a.base, -a.exp)) if a.exp != -1 else self._print(a.base))
            else:
                num.append(self._print(a))
        text = " * ".join(num) if num else "1.0"
        if den:
            text = f"({text}) / ({' * '.join(den)})"
        return "(" + text + ")"

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp.is_Integer and 1 < int(exp) <= 4:  # products (bit-identical in both targets)
            b = self._print(base)
            return "(" + " * ".join([b if self._torch else f"({b})"] * int(exp)) + ")"
        if not self._torch:
            if self.fold_numbers and exp not in (sympy.S.Half, sympy.S.NegativeOne):
                # pow, not sympy's cbrt for x**(1/3): NaN below 0, as the torch target's power
                return f"pow{self._suffix}({self._print(base)}, {self._print(exp)})"
            return str(super()._print_Pow(expr))
        if exp == sympy.Rational(1, 2):
            return f"torch.sqrt({self._print(base)})"
        if exp == -1:
            return f"(1.0 / {self._print(base)})"
        return f"_rt.power({self._print(base)}, {self._print(exp)})"

    def _print_Mod(self, expr: sympy.Mod) -> str:
        """The floor modulo (sign of the divisor), as :func:`neuroplex.runtime.fmod`."""
        a, b = (self._print(x) for x in expr.args)
        if self._torch:
            return f"_rt.fmod({a}, {b})"
        return f"(({a}) - ({b}) * {'floorf' if self.single else 'floor'}(({a}) / ({b})))"

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._fold("_rt.minimum" if self._torch else "np_min", expr.args)

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._fold("_rt.maximum" if self._torch else "np_max", expr.args)

    def _print_log(self, expr: sympy.log) -> str:
        if not self._torch:
            if len(expr.args) == 2:
                return f"(log{self._suffix}({self._print(expr.args[0])}) / log{self._suffix}({self._print(expr.args[1])}))"
            return str(super()._print_log(expr))
        if len(expr.args) == 2:
            return f"(torch.log({self._print(expr.args[0])}) / math.log({self._print(expr.args[1])}))"
        return f"torch.log({self._print(expr.args[0])})"

    # ------------------------------------------------------------ conditions
    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        out = "_rt.NAN" if self._torch else "NAN"
        for value, cond in reversed(expr.args):
            if cond is sympy.true or cond == True:  # noqa: E712 - sympy truth
                out = self._print(value)
            elif cond is sympy.false and self._torch:
                continue
            elif self._torch:
                out = f"_rt.where({self._print(cond)}, {self._print(value)}, {out})"
            else:
                out = f"(({self._print(cond)}) ? ({self._print(value)}) : ({out}))"
        return out

    def _print_Relational(self, expr: sympy.core.relational.Relational) -> str:
        if self.numeric_logic:
            return f"(({self._print(expr.lhs)}) {expr.rel_op} ({self._print(expr.rhs)}))"
        if not self._torch:
            return str(super()._print_Relational(expr))
        op = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}[expr.rel_op]
        return f"_rt.rel({self._print(expr.lhs)}, {self._print(expr.rhs)}, {op!r})"

    def _print_And(self, expr: sympy.And) -> str:
        if self.numeric_logic:
            return self._logic("&&", expr.args)
        return self._fold("_rt.logical_and", expr.args) if self._torch else str(super()._print_And(expr))

    def _print_Or(self, expr: sympy.Or) -> str:
        if self.numeric_logic:
            return self._logic("||", expr.args)
        return self._fold("_rt.logical_or", expr.args) if self._torch else str(super()._print_Or(expr))

    def _print_Xor(self, expr: sympy.Xor) -> str:
        if self.numeric_logic:
            out = self._truth(expr.args[0])
            for a in expr.args[1:]:
                out = f"({out} != {self._truth(a)})"
            return out
        return self._fold("_rt.logical_xor", expr.args) if self._torch else str(super()._print_Xor(expr))

    def _print_Not(self, expr: sympy.Not) -> str:
        if self.numeric_logic:
            return f"(!{self._truth(expr.args[0])})"
        return f"_rt.logical_not({self._print(expr.args[0])})" if self._torch else str(super()._print_Not(expr))

    def _truth(self, expr: sympy.Basic) -> str:
        """``numeric_logic``: an operand as a 0/1 truth value (any non-zero number is true)."""
        return f"({self._print(expr)} != 0.0)"

    def _logic(self, op: str, args: Sequence[sympy.Basic]) -> str:
        return "(" + f" {op} ".join(self._truth(a) for a in args) + ")"

    # -------------------------------------------------------------- functions
    def _print_Function(self, expr: Any) -> str:
        """Special functions (:mod:`neuroplex.functions`) by their one definition; the torch
        target's calls of :data:`_TORCH_CALLS` and of ``functions``; the C target: C99's."""
        name = type(expr).__name__
        args = [self._print(a) for a in expr.args]
        if name in FUNCTIONS:
            return f"{'_rt.' if self._torch else 'np_'}{name}({', '.join(args)})"
        if not self._torch:
            form = _C_FORMS.get(type(expr))
            if form is not None:
                return form.format(f=args[0], one=self._literal(1.0), s=self._suffix)
            return str(super()._print_Function(expr))
        for cls, call in _TORCH_CALLS.items():
            if isinstance(expr, cls):
                return f"{call}({', '.join(args)})"
        if name in self.functions:
            return f"{self.functions[name]}({', '.join(args)})"
        raise ModelError(f"cannot compile {name} expression {expr}")

    def _print_sign(self, expr: Any) -> str:
        return self._print_Function(expr) if self._torch else f"np_sign({self._print(expr.args[0])})"

    def _fold(self, fn: str, args: Any) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out


def _known_call(cls: type) -> Callable[[ExpressionPrinter, Any], str]:
    """The ``_print_<name>`` of a function with a torch call: the torch target's call, else the
    C99 printer's own method for it."""
    c99 = getattr(C99CodePrinter, f"_print_{cls.__name__}", C99CodePrinter._print_Function)

    def method(self: ExpressionPrinter, expr: Any) -> str:
        return self._print_Function(expr) if self._torch or cls in _C_FORMS else str(c99(self, expr))

    method.__name__ = f"_print_{cls.__name__}"
    return method


for _cls in _TORCH_CALLS:
    if _cls is not sympy.sign:
        setattr(ExpressionPrinter, f"_print_{_cls.__name__}", _known_call(_cls))


class TorchPrinter(ExpressionPrinter):
    """:class:`ExpressionPrinter` for the torch target: ``TorchPrinter(names)(expr)``."""

    def __init__(self, names: Mapping[str, str], functions: Mapping[str, str] | None = None):
        super().__init__(names, functions, target="torch")


class CPrinter(ExpressionPrinter):
    """:class:`ExpressionPrinter` for the C target in ``dtype``'s precision: ``CPrinter(names, dtype)(expr)``
    (the file also needs :func:`c_helpers`)."""

    def __init__(self, names: Mapping[str, str], dtype: torch.dtype = torch.float64):
        super().__init__(names, target="c", dtype=dtype)


def c_helpers(dtype: torch.dtype = torch.float64) -> str:
    """C definitions of the helpers the C target calls (``np_exprel`` from its one definition in
    :mod:`neuroplex.functions`, ``np_max``, ``np_min``, ``np_sign``), over a type named ``real``
    (``typedef double real;`` or ``float``) that the file defines first."""
    single = dtype == torch.float32
    number = CPrinter({}, dtype)._print_Float
    literals = dict(fabs="fabsf" if single else "fabs", expm1="expm1f" if single else "expm1",
                    small=number(sympy.Float(EXPREL_SMALL)), one=number(sympy.Float(1.0)),
                    two=number(sympy.Float(2.0)))
    return _C_HELPERS.format(exprel=FUNCTIONS["exprel"].c.format(real="real", **literals), **literals)


def _evaluate_number(e: Any, digits: int = 15) -> float:
    if e is sympy.nan:
        return math.nan
    if e in (sympy.oo, sympy.zoo):
        return math.inf
    if e == -sympy.oo:
        return -math.inf
    try:
        value = complex(e.evalf(digits))
    except (TypeError, ValueError):
        return math.nan
    return value.real if abs(value.imag) < 1e-300 else math.nan


def _num(value: float) -> str:
    if math.isnan(value):
        return "_rt.NAN"
    if math.isinf(value):
        return "_rt.INF" if value > 0 else "(-_rt.INF)"
    return repr(float(value))


def build_function(name: str, args: list[str], body: list[str], namespace: dict[str, Any] | None = None) -> Callable:
    """Execute generated source and return the function (source kept on ``fn.__source__``, its
    arguments and body lines on ``fn.__args__`` and ``fn.__body__`` to rebuild it elsewhere)."""
    source = f"def {name}({', '.join(args)}):\n" + "\n".join("    " + line for line in body) + "\n"
    scope: dict[str, Any] = {"torch": torch, "math": math, "_rt": runtime, **(namespace or {})}
    try:
        exec(compile(source, f"<neuroplex:{name}>", "exec"), scope)  # noqa: S102 - our own generated code
    except SyntaxError as exc:  # pragma: no cover - would be a printer bug
        raise ModelError(f"generated code for {name} does not compile: {exc}\n{source}") from exc
    fn = scope[name]
    fn.__source__ = source
    fn.__args__, fn.__body__ = list(args), list(body)
    return fn


@dataclass
class SplitProgram:
    """Expressions split into a part bound once per parameter set and a part run every call.

    ``static``: ``(symbol, expr)`` definitions that depend on bound inputs only (parameters,
    constants), in dependency order; ``dynamic``: definitions that depend on a varying
    symbol (state, time), in dependency order; ``outputs``: the requested expressions
    rewritten over both. Common sub-expressions appear once (``sympy.cse``), and the
    bound-input parts of dynamic expressions (``k1 * k2 / (k3 + x)`` -> ``c0 / (k3 + x)``)
    are hoisted into ``static``, so a right-hand side called thousands of times per
    simulation does no work that only the parameters decide.
    """

    static: list[tuple[sympy.Symbol, Any]]
    dynamic: list[tuple[sympy.Symbol, Any]]
    outputs: list[Any]


def split_static(outputs: Sequence[Any], definitions: Mapping[str, Any], varying: set[str],
                 prefix: str = "_c") -> SplitProgram:
    """Split ``outputs`` (which may use the named ``definitions``) into static and dynamic
    definitions; symbols named in ``varying`` (and everything that uses them) are dynamic.
    New symbols are named ``{prefix}{i}``."""
    counter = iter(range(1 << 30))

    def fresh() -> sympy.Symbol:
        return sympy.Symbol(f"{prefix}{next(counter)}")

    names = list(definitions)
    exprs = [sympy.sympify(definitions[n]) for n in names] + [sympy.sympify(e) for e in outputs]
    cse_symbols = (sympy.Symbol(f"{prefix}x{i}") for i in range(1 << 30))
    replacements, reduced = sympy.cse(exprs, symbols=cse_symbols, order="none")
    defs: dict[sympy.Symbol, Any] = dict(replacements)
    for n, e in zip(names, reduced[:len(names)]):
        defs[sympy.Symbol(n)] = e
    outs = reduced[len(names):]
    order = _dependency_order(defs)
    dynamic_syms = {sympy.Symbol(v) for v in varying}
    for s in order:
        if defs[s].free_symbols & dynamic_syms:
            dynamic_syms.add(s)
    hoisted: dict[Any, sympy.Symbol] = {}
    static: list[tuple[sympy.Symbol, Any]] = [(s, defs[s]) for s in order if s not in dynamic_syms]

    def is_static(e: Any) -> bool:
        return not (getattr(e, "free_symbols", set()) & dynamic_syms)

    def hoist(e: Any) -> Any:
        if not isinstance(e, sympy.Basic) or e.is_Atom:
            return e
        if is_static(e):
            if e not in hoisted:
                hoisted[e] = fresh()
                static.append((hoisted[e], e))
            return hoisted[e]
        if isinstance(e, (sympy.Add, sympy.Mul)):
            fixed = [a for a in e.args if is_static(a)]
            moving = [hoist(a) for a in e.args if not is_static(a)]
            if len(fixed) > 1 or (fixed and not fixed[0].is_Atom):
                fixed = [hoist(type(e)(*fixed))]
            return type(e)(*fixed, *moving, evaluate=False)
        if isinstance(e, sympy.Piecewise):
            return sympy.Piecewise(*[(hoist(v), hoist(c)) for v, c in e.args], evaluate=False)
        return e.func(*[hoist(a) for a in e.args], evaluate=False)

    dynamic = [(s, hoist(defs[s])) for s in order if s in dynamic_syms]
    return SplitProgram(static, dynamic, [hoist(e) for e in outs])


def _dependency_order(defs: Mapping[sympy.Symbol, Any]) -> list[sympy.Symbol]:
    """Definitions ordered so that each comes after the ones it uses."""
    order: list[sympy.Symbol] = []
    state: dict[sympy.Symbol, int] = {}
    for root in defs:
        stack = [(root, False)]
        while stack:
            s, expanded = stack.pop()
            if expanded:
                state[s] = 2
                order.append(s)
                continue
            if state.get(s):
                continue
            state[s] = 1
            stack.append((s, True))
            for d in getattr(defs[s], "free_symbols", ()):
                if d in defs and not state.get(d):
                    stack.append((d, False))
    return order
