"""Activation functions: one table of formulas; every derivative is computed by SymPy.

An activation is a formula in the scalar symbol `Z` (or, for softmax, a map of the whole
pre-activation vector). Nothing here knows a derivative by heart: `derivative` differentiates the
formula, and `output_form` looks for the same derivative written in the activation's output `H`
(σ′ = σ(1 − σ), tanh′ = 1 − tanh²) by inverting the formula, and keeps it only once SymPy has
checked the identity. Where no form in H alone exists but the formula itself appears in its
derivative (tanh(g(z))′ = (1 − tanh(g(z))²)·g′(z), or exp(−z²)′ = −2z·exp(−z²)), H replaces it there
and z stays: the stored output still saves evaluating the formula again.
"""

from __future__ import annotations

import gc
import io
import signal
import string
import threading
import tokenize
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

from derive.errors import DeriveError

Z = sp.Symbol("z")
H = sp.Symbol("h")
FLOAT_MAX = sp.Float("1.7976931348623157e308")


@dataclass(frozen=True)
class Activation:
    """One activation. `formula` is a scalar expression in Z, or None for a vector map."""

    name: str
    description: str
    formula: sp.Expr | None
    vector_map: Callable[[Sequence[sp.Expr]], list[sp.Expr]] | None = field(default=None, compare=False)
    source: str | None = None  # the user's text, for a user-defined activation
    symbol: str = "f"          # how derivations write it: σ, relu, tanh; f for a user formula

    @property
    def elementwise(self) -> bool:
        return self.formula is not None

    @property
    def user_defined(self) -> bool:
        return self.source is not None

    @property
    def is_identity(self) -> bool:
        return self.formula == Z

    def apply(self, zs: Sequence[sp.Expr]) -> list[sp.Expr]:
        """The activation's outputs as expressions in the given pre-activations."""
        if self.formula is None:
            assert self.vector_map is not None
            return self.vector_map(zs)
        return [self.formula.xreplace({Z: z}) for z in zs]

    @property
    def kinked(self) -> bool:
        """A corner where the derivative is a convention (relu, leaky relu, a user Max or Abs)."""
        return self.formula is not None and self.formula.has(sp.Max, sp.Min, sp.Abs, sp.Piecewise, sp.Heaviside)

    @property
    def derivative(self) -> sp.Expr:
        """dσ/dz, by SymPy, with relu′(0) = 0 (autograd's choice)."""
        assert self.formula is not None
        return derivative_of(self.formula)

    @property
    def output_form(self) -> sp.Expr | None:
        """The derivative as an expression in the output H (alone where possible, else with Z), when one
        exists and checks."""
        assert self.formula is not None
        return output_form_of(self.formula)


def _real(expr: sp.Expr) -> sp.Expr:
    return expr.replace(sp.re, lambda a: a).replace(sp.im, lambda a: sp.S.Zero)


def normalize_derivative(expr: sp.Expr) -> sp.Expr:
    """Heaviside(z) is ½ at 0 in SymPy; autograd (and every handout's relu′) uses 0; a step's own
    derivative, SymPy's DiracDelta, is 0 (see below). Every variable
    is real: SymPy differentiates |z| as if z might be complex, through re(z) and im(z). And a step
    reads its sign only: Max(z, z/4)′ is 1[z > 0] + 1[z < 0]/4, where SymPy writes
    Heaviside(3z/4) + Heaviside(−3z/4)/4 (a positive factor of the argument changes no sign)."""
    expr = expr.replace(
        lambda e: isinstance(e, sp.Derivative) and e.expr.has(sp.re, sp.im),
        lambda e: sp.diff(_real(e.expr), *e.variables),
    )
    # A step's derivative is 0 away from the step; at it there is none, and derive takes 0, as it takes
    # relu′(0) = 0 (PyTorch does the same): SymPy's DiracDelta is never shown or computed.
    expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    return _real(expr).replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Heaviside(e.args[0].as_content_primitive()[1],
                               0 if e.args[1:] in ((), (sp.S.Half,)) else e.args[1]),
    )


@cache
def derivative_of(formula: sp.Expr) -> sp.Expr:
    return normalize_derivative(sp.diff(formula, Z))


@contextmanager
def _time_limit(seconds: int):
    """Bound SymPy's `solve` on user formulas; without a main thread we simply do not try."""
    if threading.current_thread() is not threading.main_thread():
        raise TimeoutError

    def _raise(signum, frame):
        # Armed again first: Python drops an exception raised where it cannot propagate (inside a
        # garbage-collector callback, as hypothesis installs), and one lost alarm must not be the last.
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        raise TimeoutError

    # Without collections there are no collector callbacks for the alarm to land in, so it lands in
    # SymPy and stops it the first time (SymPy's objects are freed by reference counting meanwhile).
    collecting = gc.isenabled()
    gc.disable()
    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        while True:  # until disarmed and restored, even if one more alarm lands in between
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
                break
            except TimeoutError:
                continue
        if collecting:
            gc.enable()


@cache
def output_form_of(formula: sp.Expr) -> sp.Expr | None:
    derivative = derivative_of(formula)
    if Z not in derivative.free_symbols or derivative.has(sp.Heaviside, sp.Piecewise, sp.DiracDelta):
        return None  # constant, or a gate that reads best in z (1[z > 0])
    mixed = None
    for g in _output_candidates(formula, derivative):
        # A form in h alone must be short to be worth showing; one that keeps z is the derivative
        # itself with the formula replaced by h, and so always shorter than it.
        if H not in g.free_symbols or g.has(sp.LambertW, sp.I) or (Z not in g.free_symbols and sp.count_ops(g) > 8):
            continue
        # The identity is checked once per formula, on scalars; it then holds entry by entry.
        if sp.simplify(g.xreplace({H: formula}) - derivative) != 0:
            continue
        if Z not in g.free_symbols:
            return _tidy(g)
        mixed = mixed if mixed is not None else g  # kept only if no inverse gives a form in H alone
    return None if mixed is None else _tidy(mixed)


def _output_candidates(formula: sp.Expr, derivative: sp.Expr) -> Iterator[sp.Expr]:
    if derivative.has(formula):  # tanh′ = 1 − tanh(z)²: the output is already there
        yield derivative.subs(formula, H)
    try:
        with _time_limit(3):
            inverses = sp.solve(sp.Eq(H, formula), Z)
    except (TimeoutError, NotImplementedError, ValueError, TypeError):
        return
    for inverse in inverses:
        yield sp.factor(sp.simplify(derivative.xreplace({Z: inverse})))


def _tidy(g: sp.Expr) -> sp.Expr:
    """The shortest of a few equal spellings: −h(h − 1) reads h(1 − h), (e^h − 1)e^(−h) reads 1 − e^(−h)."""
    spellings = [g, sp.expand(g)]
    coeff, factors = g.as_coeff_mul()
    sums = [f for f in factors if isinstance(f, sp.Add)]
    if coeff == -1 and len(sums) == 1:
        spellings.append(sp.Mul(*[-f if f is sums[0] else f for f in factors]))
    return min(spellings, key=lambda e: (sp.count_ops(e), not isinstance(e, sp.Mul), len(str(e))))


def _softmax(zs: Sequence[sp.Expr]) -> list[sp.Expr]:
    total = sp.Add(*[sp.exp(z) for z in zs])
    return [sp.exp(z) / total for z in zs]


def leaky_relu(slope: sp.Rational) -> Activation:
    return Activation(
        "leaky_relu",
        f"leaky ReLU, slope {slope} for z ≤ 0",
        sp.Piecewise((Z, Z > 0), (slope * Z, True)),
        symbol="lrelu",
    )


DEFAULT_LEAKY_SLOPE = sp.Rational(1, 100)

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", "identity (linear output)", Z, symbol="id"),
        Activation("relu", "rectified linear unit, max(0, z)", sp.Max(0, Z), symbol="relu"),
        leaky_relu(DEFAULT_LEAKY_SLOPE),
        Activation("sigmoid", "logistic sigmoid, 1/(1 + e^(−z))", 1 / (1 + sp.exp(-Z)), symbol="σ"),
        Activation("tanh", "hyperbolic tangent", sp.tanh(Z), symbol="tanh"),
        Activation("softplus", "softplus, log(1 + e^z)", sp.log(1 + sp.exp(Z)), symbol="softplus"),
        Activation("softmax", "softmax over the layer, e^(z_i) / Σ_j e^(z_j)", None, _softmax,
                   symbol="softmax"),
    )
}

# What a user-defined activation may call: SymPy's own functions, nothing else.
ALLOWED_FUNCTIONS: dict[str, object] = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "sinh": sp.sinh,
    "cosh": sp.cosh, "sin": sp.sin, "cos": sp.cos, "atan": sp.atan,
    "Abs": sp.Abs, "abs": sp.Abs, "Max": sp.Max, "Min": sp.Min, "max": sp.Max, "min": sp.Min,
    "Heaviside": sp.Heaviside, "Piecewise": sp.Piecewise, "pi": sp.pi, "E": sp.E,
}
# Comparisons and True only make sense as Piecewise conditions; anything else using them is not an
# expression and is refused after parsing.
_ALLOWED_NAMES = {"z", "True", *ALLOWED_FUNCTIONS}
_ALLOWED_OPERATORS = {"+", "-", "*", "/", "**", "(", ")", ",", ".", "<", ">", "<=", ">="}
# Every character a formula needs, and no other: no comment, string, backslash or line break can
# reach the parser, or the generated code and documents that quote the formula.
_ALLOWED_CHARACTERS = set(string.ascii_letters + string.digits + " +-*/().,<>=")


def parse_user_activation(text: str) -> Activation:
    """A formula in z, parsed by SymPy's parser after a token whitelist (no eval of user text)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        raise DeriveError(f"activation expression {text!r} does not parse") from None
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string not in _ALLOWED_NAMES:
            allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
            raise DeriveError(
                f"activation expression {text!r} uses {tok.string!r}; only z and {allowed} are allowed"
            )
        if tok.type == tokenize.OP and tok.string not in _ALLOWED_OPERATORS:
            raise DeriveError(f"activation expression {text!r} uses the operator {tok.string!r}")
        if tok.type == tokenize.ERRORTOKEN and not tok.string.isspace():
            raise DeriveError(f"activation expression {text!r} has an unexpected {tok.string!r}")
    odd = next((ch for ch in text if ch not in _ALLOWED_CHARACTERS), None)
    if odd is not None:  # a comment, a string, a backslash or a line break, which no token above names
        raise DeriveError(f"activation expression {text!r} has an unexpected {odd!r}")
    try:
        expr = parse_expr(
            text,
            local_dict={"z": Z, **ALLOWED_FUNCTIONS},
            global_dict={"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
                         "Symbol": sp.Symbol},
            transformations=standard_transformations,
        )
    except Exception:  # SymPy's parser raises many types for malformed text
        raise DeriveError(f"activation expression {text!r} does not parse") from None
    if not isinstance(expr, sp.Expr) or expr.free_symbols != {Z}:
        raise DeriveError(f"activation expression {text!r} must be an expression in z")
    if any(piece.args[-1].cond != sp.true for piece in expr.atoms(sp.Piecewise)):
        raise DeriveError(f"activation expression {text!r}: a Piecewise needs a last branch (…, True), "
                          "so that it is defined for every z")
    expr = sp.nsimplify(expr, rational=True) if expr.has(sp.Float) else expr
    huge = next((n for n in expr.atoms(sp.Number) if n.is_finite and abs(n) > FLOAT_MAX), None)
    if huge is not None:
        raise DeriveError(f"activation expression {text!r}: the number {sp.Float(huge, 3)} is beyond the range of "
                          "a float (about 1.8e308), so the formula cannot be computed")
    foreign = _unprintable(expr) or _unprintable(derivative_of(expr))
    if foreign:
        raise DeriveError(f"activation expression {text!r}: its derivative needs {foreign}, which derive cannot "
                          "show or compute")
    return Activation("custom", f"user-defined, {expr}", expr, source=text)


# The functions the text, LaTeX and NumPy printers all write; a formula or derivative with any other
# (SymPy's LambertW, polylog, a Subs, an unevaluated Derivative) is refused when it is parsed.
PRINTABLE = (sp.exp, sp.log, sp.tanh, sp.sinh, sp.cosh, sp.sin, sp.cos, sp.atan, sp.Abs, sp.Max, sp.Min,
             sp.Heaviside, sp.Piecewise, sp.sign)


def _unprintable(expr: sp.Expr) -> str:
    for e in sp.preorder_traversal(expr):
        if isinstance(e, sp.Derivative | sp.Subs | sp.Integral):
            return type(e).__name__
        if isinstance(e, sp.Function) and not isinstance(e, PRINTABLE):
            return type(e).__name__
    return ""


def get_activation(name: str, slope: sp.Rational | None = None) -> Activation:
    """A table entry by name, or a user formula in z."""
    if name == "leaky_relu":
        return leaky_relu(slope if slope is not None else DEFAULT_LEAKY_SLOPE)
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    if name.isidentifier() and "z" != name:
        valid = ", ".join(ACTIVATIONS)
        raise DeriveError(f"unknown activation {name!r}; valid: {valid}, or an expression in z")
    return parse_user_activation(name)
