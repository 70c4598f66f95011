"""Whole blocks (W2, δ1, σ′(z1), ...) as SymPy matrix symbols, and the component matrix each stands for.

Compact forms are SymPy matrix expressions over these symbols; `identities.evaluate` turns any of
them back into components, which is how every rewrite is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import naming
from derive.network import SymbolicNetwork


@dataclass(frozen=True)
class Blocks:
    convention: str
    symbols: dict[str, sp.MatrixSymbol]
    values: dict[str, sp.ImmutableMatrix]

    def __getitem__(self, name: str) -> sp.MatrixSymbol:
        return self.symbols[name]

    def vector(self, entries) -> sp.ImmutableMatrix:
        """Entries as a column (column convention) or a row (row convention)."""
        m = sp.ImmutableMatrix(list(entries))
        return m if self.convention == "column" else m.T

    def as_row(self, block: sp.MatrixExpr) -> sp.MatrixExpr:
        """A vector block as the 1×n row a Jacobian product uses."""
        return block.T if self.convention == "column" else block

    def env(self, **overrides: sp.ImmutableMatrix) -> dict[sp.MatrixSymbol, sp.ImmutableMatrix]:
        values = {**self.values, **overrides}
        return {self.symbols[k]: v for k, v in values.items()}

    def add(self, name: str, value: sp.ImmutableMatrix) -> sp.MatrixSymbol:
        symbol = sp.MatrixSymbol(name, *value.shape)
        self.symbols[name] = symbol
        self.values[name] = value
        return symbol


def network_blocks(net: SymbolicNetwork) -> Blocks:
    """x, y, yhat, and per layer W, b, z, h, δ and, below the output, ∂L/∂h; δ and ∂L/∂h are fresh
    symbols (delta{l}_i, dL_dh{l}_i): each step is checked with what it receives left free."""
    blocks = Blocks(net.spec.convention, {}, {})
    blocks.add("x", blocks.vector(net.x))
    blocks.add("y", blocks.vector(net.y))
    for layer in net.layers:
        l = layer.index
        blocks.add(f"W{l}", layer.W)
        if layer.b is not None:
            blocks.add(f"b{l}", blocks.vector(layer.b))
        blocks.add(f"z{l}", blocks.vector(layer.z))
        blocks.add(naming.activation_block(l, l == net.depth), blocks.vector(layer.h))
        deltas = [sp.Symbol(naming.component(naming.delta(l), i)) for i in range(1, layer.n_out + 1)]
        blocks.add(naming.delta(l), blocks.vector(deltas))
        if l < net.depth:
            upstream = [sp.Symbol(naming.component(naming.upstream(l), i)) for i in range(1, layer.n_out + 1)]
            blocks.add(naming.upstream(l), blocks.vector(upstream))
    return blocks
