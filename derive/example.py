"""Worked numbers: the spec's `[example]` carried through every quantity of the derivation, exactly.

Inputs are SymPy rationals; e^… stays symbolic (ô₁ = e/(e + e² + e³)). δs and gradients are
evaluated from their compact forms, the way a handout works them, and checked against the explicit
products at the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import naming
from derive.errors import DeriveError
from derive.identities import evaluate

PRECISION = 30  # digits for the numeric agreement check of compact against explicit


@dataclass(frozen=True)
class Quantity:
    name: str                  # a block name (z1, delta2, W1) or a Jacobian name (dh1/dz1)
    exact: sp.ImmutableMatrix

    @property
    def decimal(self) -> list[list[float]]:
        return [[float(sp.N(self.exact[i, j], 17)) for j in range(self.exact.cols)] for i in range(self.exact.rows)]


@dataclass(frozen=True)
class WorkedExample:
    label: int | None               # the class, 1-based, for an index target
    inputs: tuple[Quantity, ...]    # x, y, then each W and b
    forward: tuple[Quantity, ...]   # z1, h1, ..., yhat
    loss: sp.Expr
    jacobians: tuple[Quantity, ...]
    deltas: tuple[Quantity, ...]
    gradients: tuple[Quantity, ...]
    agrees: bool                    # compact and explicit give the same numbers


def _close(a: sp.MatrixBase, b: sp.MatrixBase) -> bool:
    scale = sp.Float(10) ** (-(PRECISION - 5))
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


def work_example(d) -> WorkedExample:
    """Numbers for every quantity of the Derivation `d` (whose spec has an example)."""
    spec, net, blocks = d.spec, d.network, d.blocks
    ex = spec.example
    assert ex is not None
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
    for layer in net.layers:  # layer by layer: each equation needs only the numbers before it
        values.update({z: e.xreplace(values) for z, e in zip(layer.z, layer.z_exprs)})
        values.update({h: e.xreplace(values) for h, e in zip(layer.h, layer.h_exprs)})
        _require_defined(layer, values)
        forward.append(Quantity(f"z{layer.index}", blocks.values[f"z{layer.index}"].xreplace(values)))
        name = naming.activation_block(layer.index, layer.index == net.depth)
        forward.append(Quantity(name, blocks.values[name].xreplace(values)))

    jacobians = tuple(Quantity(j.name, j.matrix.xreplace(values)) for j in d.local_jacobians)
    numeric = {name: m.xreplace(values) for name, m in blocks.values.items()}
    agrees = True
    deltas = []
    for chain in d.deltas:  # output layer first, so δ⁽ˡ⁺¹⁾ is known when δ⁽ˡ⁾ needs it
        value = evaluate(chain.compact, blocks.env(**numeric))
        agrees &= _close(value, chain.explicit.xreplace(values))
        numeric[chain.target] = value
        deltas.append(Quantity(chain.target, value))
    gradients = []
    for chain in d.gradients:
        value = evaluate(chain.compact, blocks.env(**numeric))
        agrees &= _close(value, chain.explicit.xreplace(values))
        gradients.append(Quantity(chain.target, value))
    return WorkedExample(label, tuple(inputs), tuple(forward), net.loss_expr.xreplace(values), jacobians,
                         tuple(deltas), tuple(gradients), agrees)
