"""The derivation as plain data, and the one function that produces it.

spec → network → local Jacobians → chains → Derivation. Renderers read a Derivation and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import naming
from derive.blocks import Blocks, network_blocks
from derive.chain import Chain, build_chains
from derive.jacobians import Jacobians, LocalJacobian, local_jacobians
from derive.network import SymbolicNetwork, build_network
from derive.spec import NetworkSpec


@dataclass(frozen=True)
class Equation:
    lhs: sp.Symbol
    rhs: sp.Expr


@dataclass(frozen=True)
class LayerForward:
    """z = W a + b (or a W + b) and h = σ(z), as blocks."""

    layer: int
    z: sp.MatrixSymbol
    affine: sp.MatrixExpr
    h: sp.MatrixSymbol


@dataclass(frozen=True)
class Derivation:
    spec: NetworkSpec
    network: SymbolicNetwork
    blocks: Blocks
    forward: tuple[Equation, ...]      # component by component, layer by layer
    forward_blocks: tuple[LayerForward, ...]
    loss: Equation
    jacobians: Jacobians
    deltas: tuple[Chain, ...]          # output layer first
    gradients: tuple[Chain, ...]       # W1, b1, W2, ...
    example: object | None = None      # a WorkedExample, when the spec has numbers

    @property
    def local_jacobians(self) -> list[LocalJacobian]:
        return self.jacobians.in_order()

    @property
    def verified(self) -> bool:
        return all(c.verified for c in (*self.deltas, *self.gradients))

    def delta(self, layer: int) -> Chain:
        return next(c for c in self.deltas if c.target == f"delta{layer}")

    def gradient(self, param: str) -> Chain:
        return next(c for c in self.gradients if c.target == param)


def forward_equations(net: SymbolicNetwork) -> tuple[Equation, ...]:
    out: list[Equation] = []
    for layer in net.layers:
        out.extend(Equation(z, e) for z, e in zip(layer.z, layer.z_exprs))
        out.extend(Equation(h, e) for h, e in zip(layer.h, layer.h_exprs))
    return tuple(out)


def forward_blocks(net: SymbolicNetwork, blocks: Blocks) -> tuple[LayerForward, ...]:
    out = []
    for layer in net.layers:
        l = layer.index
        W, a = blocks[f"W{l}"], blocks[naming.input_block(l)]
        affine = sp.MatMul(W, a) if net.spec.convention == "column" else sp.MatMul(a, W)
        if layer.b is not None:
            affine = sp.MatAdd(affine, blocks[f"b{l}"], evaluate=False)
        out.append(LayerForward(l, blocks[f"z{l}"], affine, blocks[naming.activation_block(l, l == net.depth)]))
    return tuple(out)


def derive(spec: NetworkSpec) -> Derivation:
    """The whole pipeline: every Jacobian formed, every chain multiplied out, every rewrite checked."""
    net = build_network(spec)
    blocks = network_blocks(net)
    jac = local_jacobians(net, blocks)
    deltas, gradients = build_chains(net, blocks, jac)
    derivation = Derivation(spec, net, blocks, forward_equations(net), forward_blocks(net, blocks),
                            Equation(sp.Symbol("L"), net.loss_expr),
                            jac, tuple(deltas), tuple(gradients))
    if spec.example is not None:
        from derive.example import work_example

        derivation = Derivation(**{**derivation.__dict__, "example": work_example(derivation)})
    return derivation
