"""Every local Jacobian of the backward pass, by SymPy differentiation, with the structure found in it.

Structures: `row` (∂L/∂ŷ), `identity`, `diagonal` (elementwise activations), `softmax`
(diag(p) − p pᵀ), `dense` (= W or Wᵀ), `flattened-weight` (I ⊗ aᵀ or aᵀ ⊗ I). Each structure is
recognised by comparing the differentiated matrix with the structured candidate, never assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions import DiagMatrix, KroneckerProduct

from derive import naming
from derive.activations import H, Z, normalize_derivative
from derive.blocks import Blocks
from derive.identities import equal, evaluate
from derive.network import Layer, SymbolicNetwork


@dataclass(frozen=True)
class LocalJacobian:
    of: str                    # block names; wrt "W1" means vec(W1) in the spec's vec order
    wrt: str
    matrix: sp.ImmutableMatrix  # as shown: activation derivatives in terms of the output where possible
    structure: str
    block: sp.MatrixExpr       # the same matrix as a block expression (W2, diag(σ′(z1)), I ⊗ xᵀ, ...)
    reason: str = ""           # how the shown form was obtained from the differentiated one

    @property
    def name(self) -> str:
        return naming.jacobian(self.of, self.wrt)


def differentiate(exprs: Sequence[sp.Expr], wrt: Sequence[sp.Symbol]) -> sp.ImmutableMatrix:
    """Matrix.jacobian, skipping the (many) variables an entry does not contain: their derivative is 0."""
    column = {s: j for j, s in enumerate(wrt)}
    rows = []
    for e in exprs:
        row = [sp.Integer(0)] * len(wrt)
        for s in e.free_symbols:
            if s in column:
                row[column[s]] = normalize_derivative(sp.diff(e, s))
        rows.append(row)
    return sp.ImmutableMatrix(rows)


def loss_jacobian(net: SymbolicNetwork, blocks: Blocks) -> LocalJacobian:
    matrix = differentiate([net.loss_expr], net.yhat)
    gL = blocks.add(naming.LOSS_GRADIENT, blocks.vector(matrix))
    return LocalJacobian("L", "yhat", matrix, "row", blocks.as_row(gL))


def activation_jacobian(net: SymbolicNetwork, layer: Layer, blocks: Blocks) -> LocalJacobian:
    """∂h/∂z: SymPy differentiates h(z); the derivative is then written in h where a checked identity allows."""
    l, act = layer.index, layer.activation
    of = naming.activation_block(l, l == net.depth)
    raw = differentiate(layer.h_exprs, layer.z)
    n = layer.n_out
    if act.elementwise:
        derivative, output_form = act.derivative, act.output_form
        for i, z in enumerate(layer.z):  # the table's scalar derivative is exactly what was differentiated
            assert raw[i, i] == derivative.xreplace({Z: z}), (raw[i, i], derivative)
        reason = ""
        if output_form is not None:
            entries = [output_form.xreplace({H: h, Z: z}) for h, z in zip(layer.h, layer.z)]
            reason = ("entries in the layer's output, by the identity checked with its derivative"
                      if Z not in output_form.free_symbols else
                      "entries in the layer's output where the activation reappears in its derivative, by the "
                      "identity checked with it")
        else:
            entries = [raw[i, i] for i in range(n)]
        dact = blocks.add(naming.derivative_block(l), blocks.vector(entries))
        matrix = sp.ImmutableMatrix(sp.diag(*entries))
        if matrix == sp.eye(n):
            return LocalJacobian(of, f"z{l}", matrix, "identity", sp.Identity(n))
        return LocalJacobian(of, f"z{l}", matrix, "diagonal", DiagMatrix(dact), reason)
    p = blocks[of]
    outer = sp.MatMul(p, p.T) if blocks.convention == "column" else sp.MatMul(p.T, p)
    block = sp.MatAdd(DiagMatrix(p), -outer, evaluate=False)
    shown = evaluate(block, blocks.env())
    # diag(p) − p pᵀ, checked against what SymPy differentiated, with p = softmax(z) put back.
    if equal(shown, raw, dict(zip(layer.h, layer.h_exprs))):
        return LocalJacobian(of, f"z{l}", shown, "softmax", block,
                             "each output's derivative by its own input is the output times one minus itself, by "
                             "another input minus the product of the two outputs; checked against the "
                             "differentiated matrix")
    name = f"J{l}"
    return LocalJacobian(of, f"z{l}", raw, "dense", blocks.add(name, raw))


def input_jacobian(layer: Layer, blocks: Blocks) -> LocalJacobian:
    """∂z{l}/∂h{l−1}: W under the column convention, Wᵀ under the row convention."""
    l = layer.index
    matrix = differentiate(layer.z_exprs, layer.inputs)
    W = blocks[f"W{l}"]
    # The convention's own form first: a 1 × 1 W equals Wᵀ, and the general form must still read Wᵀ.
    for candidate in ((W, W.T) if blocks.convention == "column" else (W.T, W)):
        if evaluate(candidate, blocks.env()) == matrix:
            return LocalJacobian(f"z{l}", naming.input_block(l), matrix, "dense", candidate)
    raise AssertionError("∂z/∂a is neither W nor Wᵀ")


def weight_jacobian(net: SymbolicNetwork, layer: Layer, blocks: Blocks) -> LocalJacobian:
    """∂z/∂vec(W): the flattened-weight Jacobian, recognised as a Kronecker product with the input."""
    l = layer.index
    W = layer.W
    order = range(W.rows * W.cols)
    if net.spec.vec == "row-major":
        flat = [W[k // W.cols, k % W.cols] for k in order]
    else:
        flat = [W[k % W.rows, k // W.rows] for k in order]
    matrix = differentiate(layer.z_exprs, flat)
    a = blocks[naming.input_block(l)]
    a_row = blocks.as_row(a)
    eye = sp.Identity(layer.n_out)
    # The form the convention and the vec order give, first: with one unit both forms are aᵀ, and a
    # 1 × 1 identity is no factor to show.
    own_first = (blocks.convention == "column") == (net.spec.vec == "row-major")
    forms = (KroneckerProduct(eye, a_row), KroneckerProduct(a_row, eye))
    candidates = (a_row,) if layer.n_out == 1 else forms if own_first else forms[::-1]
    for candidate in candidates:
        if evaluate(candidate, blocks.env()) == matrix:
            return LocalJacobian(f"z{l}", f"W{l}", matrix, "flattened-weight", candidate)
    raise AssertionError("∂z/∂vec(W) is not a Kronecker product with the input")


def bias_jacobian(layer: Layer) -> LocalJacobian:
    assert layer.b is not None
    matrix = differentiate(layer.z_exprs, layer.b)
    assert matrix == sp.eye(layer.n_out)
    return LocalJacobian(f"z{layer.index}", f"b{layer.index}", matrix, "identity", sp.Identity(layer.n_out))


@dataclass(frozen=True)
class Jacobians:
    loss: LocalJacobian
    activation: dict[int, LocalJacobian]  # ∂h{l}/∂z{l}
    inputs: dict[int, LocalJacobian]      # ∂z{l}/∂h{l−1}, for l ≥ 2
    weights: dict[int, LocalJacobian]     # ∂z{l}/∂vec(W{l})
    biases: dict[int, LocalJacobian]      # ∂z{l}/∂b{l}

    def in_order(self) -> list[LocalJacobian]:
        """Loss first, then backwards through the network: the order a derivation meets them."""
        out = [self.loss]
        for l in sorted(self.activation, reverse=True):
            out.append(self.activation[l])
            out.append(self.weights[l])
            if l in self.biases:
                out.append(self.biases[l])
            if l in self.inputs:
                out.append(self.inputs[l])
        return out


def local_jacobians(net: SymbolicNetwork, blocks: Blocks) -> Jacobians:
    return Jacobians(
        loss=loss_jacobian(net, blocks),
        activation={layer.index: activation_jacobian(net, layer, blocks) for layer in net.layers},
        inputs={layer.index: input_jacobian(layer, blocks) for layer in net.layers[1:]},
        weights={layer.index: weight_jacobian(net, layer, blocks) for layer in net.layers},
        biases={layer.index: bias_jacobian(layer) for layer in net.layers if layer.b is not None},
    )
