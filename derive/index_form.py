"""Index notation at general sizes: one generic entry of every local derivative and gradient.

The widths are symbols (n_{l−1}, n_l, n_{l+1}); vectors and matrices are SymPy `IndexedBase`s over
bounded indices (`Idx`). SymPy differentiates the indexed sums itself, which yields Kronecker deltas,
and sums them out; a condition such as k ≤ n_{l−1} that it attaches is discharged by the index's own
range, and nothing else is. Each result is then written out at concrete sizes (the spec's, and two
others) and compared, entry by entry, with the explicit matrix derivation at those sizes: the
Jacobians formed by `jacobians.differentiate`, the products multiplied out, the rows regrouped.

The names of the indexed blocks are those of a generic layer: layer 1 stands for l, layer 2 for
l + 1, layer 0 (h0) for the layer's input; the renderers write them with labels l, l + 1, l − 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive import naming
from derive.chain import reshape
from derive.checks import Check
from derive.identities import entry_is_zero
from derive.jacobians import differentiate

WIDTHS = tuple(sp.Symbol(f"width{k}", integer=True, positive=True) for k in range(3))  # n_{l−1}, n_l, n_{l+1}
OTHER_SIZES = ((2, 3, 2), (3, 2, 4))  # the further sizes every index form is written out at


@dataclass(frozen=True)
class IndexStep:
    """lhs = forms[0] = forms[1] = …: SymPy's own intermediate results, in order."""

    name: str                      # what it is: weight, bias, activation, input, upstream, delta, output
    lhs: sp.Expr
    forms: tuple[sp.Expr, ...]
    check: Check


@dataclass(frozen=True)
class IndexForms:
    convention: str
    steps: tuple[IndexStep, ...]
    output: IndexStep | None       # δ of the output layer, where its activation has an index form

    @property
    def verified(self) -> bool:
        return all(s.check.passed for s in (*self.steps, *((self.output,) if self.output else ())))

    def step(self, name: str) -> IndexStep:
        return next(s for s in self.steps if s.name == name)


def _in_range(cond: sp.Basic) -> bool:
    """A condition idx ≤ its upper bound (or ≥ its lower), true by the index's range alone."""
    if cond == sp.true:
        return True
    if isinstance(cond, sp.And):
        return all(_in_range(c) for c in cond.args)
    if isinstance(cond, sp.core.relational.Relational):
        for small, big in ((cond.lhs, cond.rhs), (cond.rhs, cond.lhs)):
            if isinstance(small, sp.Idx) and cond.rel_op in ("<=", ">=") and (
                    (cond.rel_op == "<=" and small is cond.lhs) or (cond.rel_op == ">=" and small is cond.rhs)):
                if small.upper == big:
                    return True
            if isinstance(big, sp.Idx) and big.lower == small and (
                    (cond.rel_op == "<=" and small is cond.lhs) or (cond.rel_op == ">=" and small is cond.rhs)):
                return True
    return False


class OutOfRange(Exception):
    """SymPy left a condition that the indices' ranges do not settle."""


def pull_constants(expr: sp.Expr) -> sp.Expr:
    """Σ_i c·f(i) written c·Σ_i f(i), for every factor c free of the summation index."""
    def pull(e: sp.Sum) -> sp.Expr:
        (index, *_), *more = e.limits
        if more:
            return e
        inside, outside = [], []
        for f in sp.Mul.make_args(e.function):
            (inside if f.has(index) else outside).append(f)
        if not outside:
            return e
        return sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), *e.limits)
    return expr.replace(lambda e: isinstance(e, sp.Sum), pull)


def collapse(expr: sp.Expr) -> sp.Expr:
    """Sum the Kronecker deltas out (SymPy's doit), then drop the range conditions it attaches."""
    done = expr.doit()

    def settle(*pieces):
        for value, cond in pieces:
            if _in_range(cond):
                return value
            if cond == sp.true:
                return value
            if value != 0:
                raise OutOfRange(str(cond))
        return sp.Integer(0)

    return done.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: settle(*e.args))


# ------------------------------------------------------------------------------------------------
# The generic layer


class Generic:
    """The symbols of layer l (and l + 1) at symbolic sizes."""

    def __init__(self, convention: str, output: bool = False) -> None:
        self.column = convention == "column"
        n_in, n, n_next = WIDTHS
        self.i, self.j = sp.Idx("i", (1, n)), sp.Idx("j", (1, n))
        self.k, self.p = sp.Idx("k", (1, n_in)), sp.Idx("p", (1, n_in))
        self.m, self.q = sp.Idx("m", (1, n_next)), sp.Idx("r", (1, n))
        self.W, self.b, self.a = sp.IndexedBase("W1"), sp.IndexedBase("b1"), sp.IndexedBase("h0")
        self.z, self.h = sp.IndexedBase("z1"), sp.IndexedBase("yhat" if output else "h1")
        self.delta, self.up = sp.IndexedBase("delta1"), sp.IndexedBase(naming.upstream(1))
        self.W_next, self.z_next, self.delta_next = sp.IndexedBase("W2"), sp.IndexedBase("z2"), sp.IndexedBase("delta2")
        self.f = sp.Function("act1")

    def w(self, W, out, inp):
        """The weight from input `inp` to output `out`, as the convention stores it."""
        return W[out, inp] if self.column else W[inp, out]

    def z_expr(self, i, bias: bool = True) -> sp.Expr:
        n_in = WIDTHS[0]
        total = sp.Sum(self.w(self.W, i, self.p) * self.a[self.p], (self.p, 1, n_in))
        return total + self.b[i] if bias else total

    def z_next_expr(self, m) -> sp.Expr:
        n = WIDTHS[1]
        return sp.Sum(self.w(self.W_next, m, self.q) * self.h[self.q], (self.q, 1, n))


def _derivation(forms: list[sp.Expr]) -> tuple[sp.Expr, ...]:
    """Consecutive equal forms shown once."""
    out: list[sp.Expr] = []
    for f in forms:
        if not out or f != out[-1]:
            out.append(f)
    return tuple(out)


def _partial(of: sp.Expr, wrt: sp.Expr) -> sp.Derivative:
    return sp.Derivative(of, wrt, evaluate=False)


@cache
def generic_steps(convention: str, elementwise: bool, bias: bool = True) -> list[tuple[str, sp.Expr, list[sp.Expr]]]:
    """(name, lhs, forms) of each index step: SymPy's differentiation and sums, at symbolic sizes (a
    network without biases has no b in z, and no bias step)."""
    g = Generic(convention)
    i, j, k, m = g.i, g.j, g.k, g.m
    n, n_next = WIDTHS[1], WIDTHS[2]
    out = []
    # z_i = Σ_p W_ip a_p + b_i, and its derivative with respect to one weight
    out.append(("affine", g.z[i], [g.z_expr(i, bias)]))
    dz_dw = sp.diff(g.z_expr(i, bias), g.w(g.W, j, k))
    out.append(("weight Jacobian", _partial(g.z[i], g.w(g.W, j, k)), [dz_dw, collapse(dz_dw)]))
    grad_w = sp.Sum(g.delta[i] * collapse(dz_dw), (i, 1, n))
    out.append(("weight", _partial(sp.Symbol("L"), g.w(g.W, j, k)),
                [sp.Sum(g.delta[i] * _partial(g.z[i], g.w(g.W, j, k)), (i, 1, n)), grad_w, collapse(grad_w)]))
    if bias:
        dz_db = sp.diff(g.z_expr(i), g.b[j])
        grad_b = sp.Sum(g.delta[i] * collapse(dz_db), (i, 1, n))
        out.append(("bias", _partial(sp.Symbol("L"), g.b[j]),
                    [sp.Sum(g.delta[i] * _partial(g.z[i], g.b[j]), (i, 1, n)), grad_b, collapse(grad_b)]))
    # ∂z⁽ˡ⁺¹⁾_m/∂h_j, and the sum over the paths through layer l + 1
    dzn = sp.diff(g.z_next_expr(m), g.h[j])
    out.append(("input Jacobian", _partial(g.z_next[m], g.h[j]), [dzn, collapse(dzn)]))
    up = sp.Sum(g.delta_next[m] * collapse(dzn), (m, 1, n_next))
    out.append(("upstream", _partial(sp.Symbol("L"), g.h[j]),
                [sp.Sum(g.delta_next[m] * _partial(g.z_next[m], g.h[j]), (m, 1, n_next)), up]))
    if elementwise:
        dh = sp.diff(g.f(g.z[i]), g.z[j])
        out.append(("activation Jacobian", _partial(g.h[i], g.z[j]), [dh]))
        delta = sp.Sum(g.up[i] * dh, (i, 1, n))
        collapsed = collapse(delta)
        recursion = collapsed.xreplace({g.up[j]: up})
        out.append(("delta", g.delta[j], [_partial(sp.Symbol("L"), g.z[j]),
                                          sp.Sum(g.up[i] * _partial(g.h[i], g.z[j]), (i, 1, n)), delta, collapsed,
                                          recursion]))
    return out


LABEL = sp.Symbol("c", integer=True, positive=True)  # a class label: y_k = 1[k = c]


@cache
def output_steps(convention: str, activation: str, loss_ce: bool, label: bool = False
                 ) -> tuple[sp.Expr, list[sp.Expr]] | None:
    """δ of the output layer in index form: elementwise, or softmax (with cross-entropy, fused)."""
    g = Generic(convention, output=True)
    j, k = g.j, g.i  # k runs over the outputs, as i does over a layer's units
    n = WIDTHS[1]
    gL = sp.IndexedBase(naming.LOSS_GRADIENT)
    lhs = g.delta[j]
    start = _partial(sp.Symbol("L"), g.z[j])
    if activation == "elementwise":
        dh = sp.diff(g.f(g.z[k]), g.z[j])
        delta = sp.Sum(gL[k] * dh, (k, 1, n))
        return lhs, list(_derivation([start, sp.Sum(gL[k] * _partial(g.h[k], g.z[j]), (k, 1, n)), delta,
                                      collapse(delta)]))
    if activation != "softmax":
        return None
    p = sp.Idx("p", (1, n))
    total = sp.Sum(sp.exp(g.z[p]), (p, 1, n))
    soft = sp.exp(g.z[k]) / total
    raw = collapse(sp.diff(soft, g.z[j]))
    # e^(z_k) = ŷ_k Σ_p e^(z_p): the derivative in the outputs
    in_outputs = sp.expand(raw.xreplace({sp.exp(g.z[k]): g.h[k] * total, sp.exp(g.z[j]): g.h[j] * total}))
    jac = sp.factor_terms(in_outputs)
    forms = [start, sp.Sum(gL[k] * _partial(g.h[k], g.z[j]), (k, 1, n)), sp.Sum(gL[k] * jac, (k, 1, n))]
    if loss_ce:
        y = sp.IndexedBase("y")
        with_loss = sp.Sum(-y[k] / g.h[k] * jac, (k, 1, n))
        summed = pull_constants(sp.expand(collapse(sp.expand(with_loss))))
        fused = summed.xreplace({sp.Sum(y[k], (k, 1, n)): 1})
        forms += [with_loss, summed, fused]
        if label:  # the one-hot target of class c
            forms.append(fused.xreplace({y[j]: sp.KroneckerDelta(j, LABEL)}))
    return lhs, list(_derivation(forms))


# ------------------------------------------------------------------------------------------------
# Checks at concrete sizes


def _at(expr: sp.Expr, values: dict[sp.Symbol, int], indices: dict[sp.Idx, int]) -> sp.Expr:
    """The generic entry at concrete sizes and indices: sums written out."""
    fixed = expr.xreplace({idx: sp.Integer(v) for idx, v in indices.items()})
    return fixed.xreplace(values).doit()


def _vector(base: sp.IndexedBase, n: int) -> list[sp.Expr]:
    return [base[r + 1] for r in range(n)]


def _matrix(g: Generic, W: sp.IndexedBase, n_out: int, n_in: int) -> sp.Matrix:
    rows, cols = (n_out, n_in) if g.column else (n_in, n_out)
    return sp.Matrix(rows, cols, lambda r, c: W[r + 1, c + 1])


@cache
def _explicit(convention: str, vec: str, sizes: tuple[int, int, int], elementwise: bool) -> dict[str, Callable]:
    """The matrix derivation of one generic layer at concrete sizes: entry (indices) -> expression."""
    g = Generic(convention)
    n_in, n, n_next = sizes
    a, b = _vector(g.a, n_in), _vector(g.b, n)
    W = _matrix(g, g.W, n, n_in)
    z_exprs = [sum(g.w(W, r, c) * a[c] for c in range(n_in)) + b[r] for r in range(n)]
    flat = [W[t // W.cols, t % W.cols] for t in range(W.rows * W.cols)] if vec == "row-major" else \
        [W[t % W.rows, t // W.rows] for t in range(W.rows * W.cols)]
    weight_jac = differentiate(z_exprs, flat)
    delta = sp.Matrix([_vector(g.delta, n)])
    grad_w = reshape(delta * weight_jac, W.shape, vec)
    grad_b = delta * differentiate(z_exprs, b)
    h = _vector(g.h, n)
    W_next = _matrix(g, g.W_next, n_next, n)
    z_next = [sum(g.w(W_next, r, c) * h[c] for c in range(n)) for r in range(n_next)]
    input_jac = differentiate(z_next, h)
    upstream = sp.Matrix([_vector(g.delta_next, n_next)]) * input_jac
    out: dict[str, Callable] = {
        # W's entry from input k to output j, at its place in the stored matrix
        "weight Jacobian": lambda i, j, k: weight_jac[i - 1, flat.index(g.w(W, j - 1, k - 1))],
        "weight": lambda j, k: g.w(grad_w, j - 1, k - 1),
        "bias": lambda j: grad_b[0, j - 1],
        "input Jacobian": lambda m, j: input_jac[m - 1, j - 1],
        "upstream": lambda j: upstream[0, j - 1],
    }
    if elementwise:
        zs = _vector(g.z, n)
        act_jac = differentiate([g.f(z) for z in zs], zs)
        delta_h = sp.Matrix([_vector(g.up, n)]) * act_jac
        recursion = upstream * act_jac
        out["activation Jacobian"] = lambda i, j: act_jac[i - 1, j - 1]
        out["delta"] = lambda j: recursion[0, j - 1]
        out["delta, received"] = lambda j: delta_h[0, j - 1]
    return out


_ENTRY_INDICES = {  # the free indices of each step's generic entry, in `_explicit`'s argument order
    "weight Jacobian": ("i", "j", "k"), "weight": ("j", "k"), "bias": ("j",), "input Jacobian": ("m", "j"),
    "upstream": ("j",), "activation Jacobian": ("i", "j"), "delta": ("j",),
}


@cache
def _agrees(name: str, form: sp.Expr, convention: str, vec: str, sizes: tuple[int, int, int],
            elementwise: bool) -> bool:
    g = Generic(convention)
    explicit = _explicit(convention, vec, sizes, elementwise)[name]
    index = {"i": g.i, "j": g.j, "k": g.k, "m": g.m}
    ranges = {"i": sizes[1], "j": sizes[1], "k": sizes[0], "m": sizes[2]}
    values = dict(zip(WIDTHS, sizes))
    names = _ENTRY_INDICES[name]

    def entries(prefix: tuple[int, ...]):
        if len(prefix) == len(names):
            yield prefix
            return
        for v in range(1, ranges[names[len(prefix)]] + 1):
            yield from entries((*prefix, v))

    for point in entries(()):
        at = _at(form, values, {index[nm]: v for nm, v in zip(names, point)})
        if not entry_is_zero(sp.expand(at - explicit(*point))):
            return False
    return True


@cache
def index_forms(convention: str, vec: str, spec_sizes: tuple[int, int, int], elementwise: bool,
                output: tuple | None, bias: bool = True) -> IndexForms:
    """Every generic step, each checked at the spec's sizes and at OTHER_SIZES."""
    # The spec's own sizes too, where writing them out is cheap (every entry of ∂z/∂W is one check).
    small = spec_sizes[0] * spec_sizes[1] * spec_sizes[2] <= 36
    sizes = tuple(dict.fromkeys((*((spec_sizes,) if small else ()), *OTHER_SIZES)))
    steps = []
    for name, lhs, forms in generic_steps(convention, elementwise, bias):
        forms = list(_derivation(forms))
        if name == "affine":
            steps.append(IndexStep(name, lhs, tuple(forms), Check("definition", True)))
            continue
        try:
            ok = all(_agrees(name, forms[-1], convention, vec, s, elementwise) for s in sizes)
        except OutOfRange:
            ok = False
        detail = "at sizes " + ", ".join("×".join(map(str, s)) for s in sizes)
        steps.append(IndexStep(name, lhs, tuple(forms), Check("index", ok, detail)))
    out_step = None
    if output is not None:
        found = output_steps(convention, *output)
        if found is not None:
            lhs, forms = found
            out_step = IndexStep("output", lhs, tuple(forms), _output_check(convention, output, tuple(forms)))
    return IndexForms(convention, tuple(steps), out_step)


@cache
def _output_check(convention: str, output: tuple, forms: tuple[sp.Expr, ...]) -> Check:
    """The output δ's index form against the explicit product at two sizes."""
    activation, ce, *rest = output
    label = bool(rest and rest[0])
    g = Generic(convention, output=True)
    gL = sp.IndexedBase(naming.LOSS_GRADIENT)
    y = sp.IndexedBase("y")
    ok = True
    for n in (2, 3):
        zs = _vector(g.z, n)
        if activation == "elementwise":
            outs = [g.f(z) for z in zs]
        else:
            total = sum(sp.exp(z) for z in zs)
            outs = [sp.exp(z) / total for z in zs]
        jac = differentiate(outs, zs)
        if ce:
            loss_row = sp.Matrix([[-y[k + 1] / outs[k] for k in range(n)]])
        else:
            loss_row = sp.Matrix([_vector(gL, n)])
        product = loss_row * jac
        for jv in range(1, n + 1):
            at = _at(forms[-1], {WIDTHS[1]: n}, {g.j: jv})
            at = at.xreplace({g.h[t + 1]: outs[t] for t in range(n)})
            reference = product[0, jv - 1]
            if label:  # the last form, for every class c: y one-hot
                for c in range(1, n + 1):
                    onehot = {y[t + 1]: int(t + 1 == c) for t in range(n)}
                    at_c = at.xreplace({LABEL: c}).doit().xreplace(onehot)
                    ref_c = reference.xreplace(onehot)
                    u = {z: sp.log(sp.Symbol(f"u{t}", positive=True)) for t, z in enumerate(zs)}
                    if not entry_is_zero(sp.expand((at_c - ref_c).xreplace(u))):
                        ok = False
                continue
            if ce:  # the targets sum to one
                reference = reference.xreplace({y[n]: 1 - sum(y[t + 1] for t in range(n - 1))})
                at = at.xreplace({y[n]: 1 - sum(y[t + 1] for t in range(n - 1))})
            # z_t = log u_t, u_t > 0: every e^(k z_t) becomes u_t^k, and the difference a rational function
            u = {z: sp.log(sp.Symbol(f"u{t}", positive=True)) for t, z in enumerate(zs)}
            if not entry_is_zero(sp.expand((at - reference).xreplace(u))):
                ok = False
    return Check("index", ok, "at 2 and 3 outputs" + (", for every class" if label else
                                                      ", with the targets summing to 1" if ce else ""))
