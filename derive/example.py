"""Worked numbers: the spec's `[example]` carried through every quantity of the derivation.

Inputs are SymPy rationals; e^… stays symbolic (ô₁ = e/(e + e² + e³)), and each exact value is put
in its shortest equal form (1/2, not (1 + e)(1 + e⁻¹)/(2 + e + e⁻¹)). Exact values can grow with
depth; once a layer's would be longer than `MAX_EXACT` characters, that layer's values and all that
follow are carried as decimals of `DIGITS` significant digits instead, and the output says from
where. The backward pass goes layer by layer from the output, as the derivation does: the gradient
received (∂L/∂ŷ or ∂L/∂h⁽ˡ⁾), the layer's Jacobians, δ⁽ˡ⁾, then ∂L/∂W⁽ˡ⁾ and ∂L/∂b⁽ˡ⁾, each from its
compact form and checked against the explicit product of the Jacobians at the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import naming
from derive.chain import reshape
from derive.checks import Check
from derive.errors import DeriveError
from derive.identities import evaluate

PRECISION = 30   # digits for the numeric agreement check of compact against explicit
DIGITS = 30      # significant digits of values carried as decimals
MAX_EXACT = 160  # characters of an exact value beyond which a layer's values become decimals


@dataclass(frozen=True)
class Quantity:
    name: str                  # a block name (z1, delta2, W1, dL_dh1) or a Jacobian name (dh1/dz1)
    exact: sp.ImmutableMatrix
    check: Check | None = None  # for backward quantities: the explicit product gives the same numbers

    @property
    def decimal(self) -> list[list[float]]:
        return [[float(sp.N(self.exact[i, j], 17)) for j in range(self.exact.cols)] for i in range(self.exact.rows)]

    @property
    def is_exact(self) -> bool:
        return not any(e.has(sp.Float) for e in self.exact)


@dataclass(frozen=True)
class Kink:
    """A pre-activation exactly where its activation's derivative is a convention (relu at 0)."""

    layer: int
    unit: int
    value: sp.Expr             # the pre-activation
    derivative: sp.Expr        # the derivative used there


@dataclass(frozen=True)
class ExampleLayer:
    layer: int
    quantities: tuple[Quantity, ...]


@dataclass(frozen=True)
class WorkedExample:
    label: int | None               # the class, 1-based, for an index target
    inputs: tuple[Quantity, ...]    # x, y, then each W and b
    forward: tuple[Quantity, ...]   # z1, h1, ..., yhat
    loss: sp.Expr
    backward: tuple[ExampleLayer, ...]  # output layer first
    agrees: bool                    # compact and explicit give the same numbers
    kinks: tuple[Kink, ...]
    decimal_from: int | None        # the first layer whose values are decimals (None: all exact)

    def _all(self, prefix: str) -> tuple[Quantity, ...]:
        return tuple(q for layer in self.backward for q in layer.quantities if q.name.startswith(prefix))

    @property
    def jacobians(self) -> tuple[Quantity, ...]:
        return tuple(q for layer in self.backward for q in layer.quantities if "/" in q.name)

    @property
    def deltas(self) -> tuple[Quantity, ...]:
        return self._all("delta")

    @property
    def upstreams(self) -> tuple[Quantity, ...]:
        return self._all("dL_dh")

    @property
    def gradients(self) -> tuple[Quantity, ...]:
        """W1, b1, W2, ...: the parameters' order."""
        found = [q for layer in reversed(self.backward) for q in layer.quantities if q.name[:1] in "Wb"
                 and "/" not in q.name]
        return tuple(found)


def _close(a: sp.MatrixBase, b: sp.MatrixBase) -> bool:
    scale = sp.Float(10) ** (-(min(PRECISION, DIGITS) - 5))
    return all(abs(sp.N(x - y, PRECISION)) <= scale * (1 + abs(sp.N(x, PRECISION))) for x, y in zip(a, b))


def finite_real(value: sp.Expr) -> bool:
    """Whether an exact number is finite and real (log(−2) is not, nor is 1/0)."""
    number = sp.N(value, 15)
    return number.is_finite is True and number.is_real is True


def _require_defined(layer, values: dict[sp.Symbol, sp.Expr]) -> None:
    """A user formula such as log(z) or 1/z is not defined for every z: example numbers outside its
    domain would carry complex or infinite values through every later step."""
    for z, h in zip(layer.z, layer.h):
        number = sp.N(values[h], 15)
        if number.is_finite is not True:
            problem = f"{h} is not finite there (SymPy gives {values[h]})"
        elif number.is_real is not True:
            problem = f"it gives {h} = {values[h]}, which is not a real number"
        else:
            continue
        raise DeriveError(f"the numbers leave the domain of layer {layer.index}'s activation at {z} = {values[z]}: "
                          f"{problem}", "example")


def tidy_number(value: sp.Expr) -> sp.Expr:
    """The shortest equal form of an exact number: a rational where it is one (checked exactly)."""
    if value.is_Rational or value.has(sp.Float) or not value.is_number or sp.count_ops(value) <= 2:
        return value
    approx = sp.N(value, 50)
    if approx.is_real:
        r = sp.nsimplify(approx, rational=True, tolerance=sp.Float(10) ** -45)
        # proved, not guessed: e and its powers are independent generators of a rational function
        if len(str(r)) <= 12 and sp.cancel(sp.together(value - r)) == 0:
            return r
    candidates = [value]
    for rewrite in (sp.cancel, sp.factor):
        try:
            candidates.append(rewrite(value))
        except (sp.PolynomialError, NotImplementedError, TypeError, ValueError):
            continue
    best = min(candidates, key=lambda c: (sp.count_ops(c), len(str(c))))
    return best if best is value or sp.cancel(sp.together(best - value)) == 0 else value


def _tidy(m: sp.MatrixBase) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(m.rows, m.cols, lambda i, j: tidy_number(m[i, j]))


def _decimals(m: sp.MatrixBase) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(m.rows, m.cols, lambda i, j: sp.Float(sp.N(m[i, j], DIGITS), DIGITS))


def kink_expressions(formula: sp.Expr) -> list[sp.Expr]:
    """Expressions in z that are 0 exactly at a kink of the formula: the arguments of |·| and steps,
    the differences of a max's or min's arguments, a Piecewise condition's two sides."""
    from derive.activations import Z

    out = []
    for e in formula.atoms(sp.Abs, sp.Heaviside, sp.sign):
        out.append(e.args[0])
    for e in formula.atoms(sp.Max, sp.Min):
        args = e.args
        out += [a - b for k, a in enumerate(args) for b in args[k + 1:]]
    for e in formula.atoms(sp.Piecewise):
        for piece in e.args:
            cond = piece.cond
            if isinstance(cond, sp.core.relational.Relational):
                out.append(cond.lhs - cond.rhs)
    return [k for k in out if k.has(Z)]


def _kinks(layer, values) -> list[Kink]:
    from derive.activations import Z

    act = layer.activation
    if not act.elementwise or not act.kinked:
        return []
    points = kink_expressions(act.formula)
    out = []
    for unit, z in enumerate(layer.z, start=1):
        v = values[z]
        if any(p.xreplace({Z: v}) == 0 for p in points):
            out.append(Kink(layer.index, unit, v, act.derivative.xreplace({Z: v})))
    return out


def work_example(d) -> WorkedExample:
    """Numbers for every quantity of the Derivation `d` (whose spec has an example)."""
    spec, net, blocks, jac = d.spec, d.network, d.blocks, d.jacobians
    ex = spec.example
    assert ex is not None
    column = spec.convention == "column"
    values: dict[sp.Symbol, sp.Expr] = dict(zip(net.x, ex.x))
    label = ex.y if isinstance(ex.y, int) else None
    y = [sp.Integer(int(k == label)) for k in range(1, len(net.y) + 1)] if label is not None else list(ex.y)
    values.update(zip(net.y, y))
    inputs = [Quantity("x", blocks.values["x"].xreplace(values)), Quantity("y", blocks.values["y"].xreplace(values))]
    for layer in net.layers:
        rows = ex.param(f"W{layer.index}")
        values.update({layer.W[i, j]: rows[i][j] for i in range(layer.W.rows) for j in range(layer.W.cols)})
        inputs.append(Quantity(f"W{layer.index}", layer.W.xreplace(values)))
        if layer.b is not None:
            values.update(zip(layer.b, ex.param(f"b{layer.index}")[0]))
            inputs.append(Quantity(f"b{layer.index}", blocks.values[f"b{layer.index}"].xreplace(values)))

    forward = []
    kinks: list[Kink] = []
    decimal_from = None
    for layer in net.layers:  # layer by layer: each equation needs only the numbers before it
        zs = [tidy_number(e.xreplace(values)) for e in layer.z_exprs]
        hs = [tidy_number(e.xreplace({**values, **dict(zip(layer.z, zs))})) for e in layer.h_exprs]
        if decimal_from is None and max(len(str(v)) for v in (*zs, *hs)) > MAX_EXACT:
            decimal_from = layer.index
        if decimal_from is not None:
            zs = [sp.Float(sp.N(v, DIGITS), DIGITS) for v in zs]
            hs = [sp.Float(sp.N(e.xreplace({**values, **dict(zip(layer.z, zs))}), DIGITS), DIGITS)
                  for e in layer.h_exprs]
        values.update(zip(layer.z, zs))
        values.update(zip(layer.h, hs))
        _require_defined(layer, values)
        kinks += _kinks(layer, values)
        forward.append(Quantity(f"z{layer.index}", blocks.values[f"z{layer.index}"].xreplace(values)))
        name = naming.activation_block(layer.index, layer.index == net.depth)
        forward.append(Quantity(name, blocks.values[name].xreplace(values)))

    def at(m: sp.MatrixBase) -> sp.ImmutableMatrix:
        m = sp.ImmutableMatrix(m).xreplace(values)
        return _decimals(m) if decimal_from is not None and any(not e.is_Rational for e in m) else _tidy(m)

    numeric = {name: m.xreplace(values) for name, m in blocks.values.items()}
    agrees = True
    backward = []
    L = net.depth
    # The explicit products of the Jacobians at the numbers, row by row (the reference).
    row = at(jac.loss.matrix)
    items: list[Quantity] = []

    def checked(name: str, compact: sp.MatrixExpr, reference: sp.MatrixBase) -> sp.ImmutableMatrix:
        """A compact form at the numbers, recorded with whether the explicit product agrees."""
        nonlocal agrees
        value = at(evaluate(compact, blocks.env(**numeric)))
        ok = _close(value, reference)
        agrees &= ok
        items.append(Quantity(name, value, Check("numbers", ok)))
        return value

    for l in range(L, 0, -1):
        items.clear()
        b = d.layer(l)
        if l == L:
            items.append(Quantity(naming.LOSS_GRADIENT, at(jac.loss.matrix), Check("numbers", True)))
        else:
            in_jac = jac.inputs[l + 1]
            items.append(Quantity(in_jac.name, at(in_jac.matrix)))
            row = sp.ImmutableMatrix(row * at(in_jac.matrix))
            numeric[naming.upstream(l)] = checked(naming.upstream(l), b.upstream.compact, row.T if column else row)
        act_jac = jac.activation[l]
        items.append(Quantity(act_jac.name, at(act_jac.matrix)))
        row = sp.ImmutableMatrix(row * at(act_jac.matrix))
        numeric[naming.delta(l)] = checked(naming.delta(l), b.delta.compact, row.T if column else row)
        wjac = jac.weights[l]
        items.append(Quantity(wjac.name, at(wjac.matrix)))
        reference = reshape(row * at(wjac.matrix), net.layers[l - 1].W.shape, spec.vec)
        checked(f"W{l}", b.weight.compact, reference.T if spec.layout == "numerator" else reference)
        if b.bias is not None:
            checked(f"b{l}", b.bias.compact, row.T if column != (spec.layout == "numerator") else row)
        backward.append(ExampleLayer(l, tuple(items)))
    loss = net.loss_expr.xreplace(values)
    loss = sp.Float(sp.N(loss, DIGITS), DIGITS) if decimal_from is not None else tidy_number(loss)
    return WorkedExample(label, tuple(inputs), tuple(forward), loss, tuple(backward), agrees, tuple(kinks),
                         decimal_from)
