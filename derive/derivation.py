"""The derivation as plain data, and the one function that produces it.

spec → network → local Jacobians → the backward pass, layer by layer → teaching devices and the
general forms → Derivation. Renderers read a Derivation and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import sympy as sp

from derive import naming
from derive.blocks import Blocks, network_blocks
from derive.chain import Chain, LayerBackward, backward_pass
from derive.checks import DEFINITION, Check
from derive.errors import DeriveError
from derive.jacobians import Jacobians, LocalJacobian, local_jacobians
from derive.network import SymbolicNetwork, build_network
from derive.sizes import Sizes, small_instance
from derive.spec import NetworkSpec


@dataclass(frozen=True)
class Equation:
    lhs: sp.Basic
    rhs: sp.Basic
    check: Check = DEFINITION


@dataclass(frozen=True)
class LayerForward:
    """z = W a + b (or a W + b) and h = σ(z), as blocks."""

    layer: int
    z: sp.MatrixSymbol
    affine: sp.MatrixExpr
    h: sp.MatrixSymbol
    check: Check = DEFINITION


@dataclass(frozen=True)
class Derivation:
    spec: NetworkSpec
    network: SymbolicNetwork
    blocks: Blocks
    forward: tuple[Equation, ...]      # component by component, layer by layer
    forward_blocks: tuple[LayerForward, ...]
    loss: Equation
    jacobians: Jacobians
    backward: tuple[LayerBackward, ...]  # output layer first
    teaching: object | None = None     # a teaching.Teaching: the seeds' devices and the general forms
    example: object | None = None      # a WorkedExample, when the spec has numbers
    domain: object | None = None       # a domain.DomainWarning: the loss is never defined on the outputs
    sizes: Sizes | None = None         # set when a small instance of a wide network stands for it (derive_shown)

    @property
    def local_jacobians(self) -> list[LocalJacobian]:
        return self.jacobians.in_order()

    @property
    def chains(self) -> tuple[Chain, ...]:
        return tuple(c for layer in self.backward for c in layer.chains)

    @property
    def verified(self) -> bool:
        return all(c.verified for c in self.chains) and (self.teaching is None or self.teaching.verified)

    @property
    def loss_gradient(self) -> Chain:
        return self.backward[0].upstream

    @property
    def deltas(self) -> tuple[Chain, ...]:
        """δ of every layer, output layer first."""
        return tuple(layer.delta for layer in self.backward)

    @property
    def upstreams(self) -> tuple[Chain, ...]:
        """∂L/∂h⁽ˡ⁾ of every hidden layer, from the output down."""
        return tuple(layer.upstream for layer in self.backward[1:])

    @property
    def gradients(self) -> tuple[Chain, ...]:
        """The parameters' gradients, layer 1 first: W1, b1, W2, ..."""
        out: list[Chain] = []
        for layer in reversed(self.backward):
            out += [layer.weight] + ([layer.bias] if layer.bias is not None else [])
        return tuple(out)

    def delta(self, layer: int) -> Chain:
        return next(c for c in self.deltas if c.target == naming.delta(layer))

    def gradient(self, param: str) -> Chain:
        return next(c for c in self.gradients if c.target == param)

    def layer(self, index: int) -> LayerBackward:
        return next(b for b in self.backward if b.layer == index)

    @cached_property
    def explicit(self) -> dict[str, sp.ImmutableMatrix]:
        """Every quantity as the full product over the components (for the JSON and for tests)."""
        from derive.explicit import explicit_products

        return explicit_products(self)


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
    """The whole pipeline: every Jacobian formed, every layer's chain derived and every step checked."""
    net = build_network(spec)
    blocks = network_blocks(net)
    jac = local_jacobians(net, blocks)
    from derive.domain import loss_domain

    derivation = Derivation(spec, net, blocks, forward_equations(net), forward_blocks(net, blocks),
                            Equation(sp.Symbol("L"), net.loss_expr), jac, backward_pass(net, blocks, jac),
                            domain=loss_domain(spec))
    from derive.teaching import teaching

    derivation = replace(derivation, teaching=teaching(derivation))
    if spec.example is not None:
        from derive.example import work_example

        derivation = replace(derivation, example=work_example(derivation))
    return derivation


def derive_shown(spec: NetworkSpec, max_side: int = 6) -> Derivation:
    """The derivation a renderer shows. A network with a layer wider than `max_side` (more than a displayed
    side) is derived at a small instance whose every wide side is elided just the same, and the result
    carries the real widths (derive.sizes): what is shown is the full network's, at a cost that does
    not grow with the width."""
    found = small_instance(spec, max_side)
    if found is None:
        return derive(spec)
    if spec.example is not None:
        raise DeriveError(f"a worked example is shown for layers of at most {max_side} units (this network has "
                          f"{max(spec.widths)}); `derive numpy` and `derive check` take any width",
                          f"{spec.name or 'spec'}: example")
    small, sizes = found
    return replace(derive(small), spec=spec, sizes=sizes)
