"""The network as SymPy symbols: every component named, the forward pass as equations, layer by layer.

Intermediate quantities stay symbols (z1_1, h1_1, ...): each layer's equations mention only the
previous layer's symbols, so nothing grows with depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import naming
from derive.activations import Activation
from derive.losses import Loss
from derive.spec import NetworkSpec

Vector = tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class Layer:
    index: int
    activation: Activation
    inputs: Vector              # the previous layer's activations (x for layer 1)
    W: sp.ImmutableMatrix       # stored as the convention stores it
    b: Vector | None
    z: Vector
    h: Vector                   # the last layer's are the yhat symbols
    z_exprs: tuple[sp.Expr, ...]  # z_i in terms of inputs, W, b
    h_exprs: tuple[sp.Expr, ...]  # h_i in terms of z

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.z)


@dataclass(frozen=True)
class SymbolicNetwork:
    spec: NetworkSpec
    x: Vector
    y: Vector
    layers: tuple[Layer, ...]
    loss: Loss
    loss_expr: sp.Expr

    @property
    def yhat(self) -> Vector:
        return self.layers[-1].h

    @property
    def depth(self) -> int:
        return len(self.layers)

    def readers(self) -> dict[sp.Symbol, frozenset[str]]:
        """For each component symbol, the blocks whose equations read it: the chain rule's
        precondition (a quantity reaches the loss only through its readers) is read off this."""
        out: dict[sp.Symbol, set[str]] = {}
        for layer in self.layers:
            for e in layer.z_exprs:
                for s in e.free_symbols:
                    out.setdefault(s, set()).add(f"z{layer.index}")
            h = "yhat" if layer.index == self.depth else f"h{layer.index}"
            for e in layer.h_exprs:
                for s in e.free_symbols:
                    out.setdefault(s, set()).add(h)
        for s in self.loss_expr.free_symbols:
            out.setdefault(s, set()).add("L")
        return {s: frozenset(v) for s, v in out.items()}

    def target_constraint(self) -> dict[sp.Symbol, sp.Expr]:
        """Σ_k y_k = 1, as a substitution for the last target (cross-entropy's targets)."""
        if not self.loss.targets_sum_to_one or len(self.y) < 1:
            return {}
        return {self.y[-1]: 1 - sp.Add(*self.y[:-1])}


def _symbols(names: list[str]) -> Vector:
    return tuple(sp.Symbol(n) for n in names)


def build_network(spec: NetworkSpec) -> SymbolicNetwork:
    x = _symbols([naming.component("x", j) for j in range(1, spec.input + 1)])
    k = spec.layers[-1].units
    y = _symbols([naming.component("y", i) for i in range(1, k + 1)])
    layers: list[Layer] = []
    inputs = x
    for l, layer_spec in enumerate(spec.layers, start=1):
        n_in, n_out = len(inputs), layer_spec.units
        last = l == len(spec.layers)
        rows, cols = (n_out, n_in) if spec.convention == "column" else (n_in, n_out)
        W = sp.ImmutableMatrix([[sp.Symbol(naming.weight(l, i + 1, j + 1)) for j in range(cols)] for i in range(rows)])
        b = _symbols([naming.bias(l, i) for i in range(1, n_out + 1)]) if layer_spec.bias else None
        z = _symbols([naming.component(f"z{l}", i) for i in range(1, n_out + 1)])
        h = _symbols([naming.component("yhat" if last else f"h{l}", i) for i in range(1, n_out + 1)])
        z_exprs = []
        for i in range(n_out):
            # column: z = W a + b (W is n_out × n_in); row: z = a W + b (W is n_in × n_out)
            weights = W.row(i) if spec.convention == "column" else W.col(i).T
            total = sp.Add(*[weights[j] * inputs[j] for j in range(n_in)])
            z_exprs.append(total + b[i] if b is not None else total)
        activation = layer_spec.resolve()
        layers.append(Layer(l, activation, inputs, W, b, z, h, tuple(z_exprs), tuple(activation.apply(z))))
        inputs = h
    loss = spec.loss.resolve()
    return SymbolicNetwork(spec, x, y, tuple(layers), loss, loss.expression(layers[-1].h, y))
