"""Chains of local Jacobians, multiplied out, then rewritten step by step by named rules.

Each rule is a small function from block expressions to a block expression. The engine applies
them in order and records, for each step, whether the new form, evaluated over components, equals
the explicit product (`identities.equal`). A step that does not check is kept with verified = False
and the renderers say so; it is never shown as done.

δ⁽ˡ⁾ is computed once per layer and reused by every parameter of that layer and by the layer below.
The checks of a δ step treat δ⁽ˡ⁺¹⁾ as free symbols, so each holds whatever δ⁽ˡ⁺¹⁾ is; chained
together they prove the compact form for the whole product, and no check grows with depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions import DiagMatrix, HadamardProduct

from derive import naming
from derive.blocks import Blocks
from derive.identities import entry_is_zero, equal, evaluate
from derive.jacobians import Jacobians, LocalJacobian
from derive.network import SymbolicNetwork


@dataclass(frozen=True)
class Rule:
    name: str
    reason: str


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("chain rule", "the derivative of a composition is the product of the local Jacobians, in order"),
    Rule("delta reuse", "the leading factors are the layer's delta, already computed once"),
    Rule("identity", "multiplying by an identity matrix changes nothing"),
    Rule("dense transpose", "a row vector times W, written as a column, is W transposed times the column"),
    Rule("diagonal to Hadamard",
         "a vector times a diagonal matrix scales each entry: an elementwise (Hadamard) product"),
    Rule("softmax Jacobian",
         "the softmax Jacobian diag(p) − p pᵀ applied to g gives p ⊙ g − p (pᵀ g)"),
    Rule("flattened weight to outer product",
         "the flattened-weight Jacobian repeats the layer input once per output; regrouped into the "
         "weight's shape, the row becomes an outer product"),
    Rule("loss gradient", "the loss gradient is a multiple of the error, prediction minus target"),
    Rule("softmax + cross-entropy",
         "the 1/p of the log-loss cancels the softmax Jacobian; the targets sum to one"),
    Rule("sigmoid + binary cross-entropy",
         "the denominator p(1 − p) of the loss derivative cancels the sigmoid's derivative"),
    Rule("cancellation", "the loss derivative and the activation derivative cancel into the error"),
    Rule("numerator layout", "numerator layout arranges the same entries as the Jacobian does: transposed"),
)}


@dataclass(frozen=True)
class Step:
    rule: str
    lhs: sp.MatrixExpr
    rhs: sp.MatrixExpr
    verified: bool

    @property
    def reason(self) -> str:
        return RULES[self.rule].reason


@dataclass(frozen=True)
class Chain:
    """One quantity's derivation: its chain of factors, the product multiplied out, and the rewrites."""

    target: str                   # delta2, W1, b1
    factors: tuple[str, ...]      # local Jacobian names, in multiplication order
    explicit: sp.ImmutableMatrix  # components only, shaped like the final lhs
    steps: tuple[Step, ...]

    @property
    def lhs(self) -> sp.MatrixExpr:
        return self.steps[-1].lhs

    @property
    def compact(self) -> sp.MatrixExpr:
        return self.steps[-1].rhs

    @property
    def verified(self) -> bool:
        return all(s.verified for s in self.steps)

    @property
    def general_entry(self) -> sp.Expr:
        return general_entry(self.compact)


INDEX_I, INDEX_J = sp.symbols("i j", integer=True, positive=True)


def general_entry(form: sp.MatrixExpr) -> sp.Expr:
    """Entry (i, j) of a compact form for any size: blocks get symbolic sizes so sums stay sums."""
    def size(n: int, name: str):
        return 1 if n == 1 else sp.Symbol(name, integer=True, positive=True)

    sized = form.xreplace({b: sp.MatrixSymbol(b.name, size(b.shape[0], f"n_{b.name}"), size(b.shape[1], f"m_{b.name}"))
                           for b in form.atoms(sp.MatrixSymbol)})
    rows, cols = form.shape
    return sized[INDEX_I if rows > 1 else 0, INDEX_J if cols > 1 else 0]


# ----------------------------------------------------------------------------------------------
# The rules, each a function of blocks. `g` is a vector block in the convention's orientation.


def drop_identity(g: sp.MatrixExpr) -> sp.MatrixExpr:
    return g


def dense_transpose(delta_row: sp.MatrixExpr, W: sp.MatrixExpr) -> sp.MatrixExpr:
    """(δᵀ W)ᵀ = Wᵀ δ, for the column convention."""
    return sp.MatMul(W.T, delta_row.T)


def diagonal_to_hadamard(g: sp.MatrixExpr, d: sp.MatrixExpr) -> sp.MatrixExpr:
    """r diag(d) = r ⊙ dᵀ: with g the vector of r (in the convention's orientation), g ⊙ d."""
    return HadamardProduct(g, d)


def softmax_product(g: sp.MatrixExpr, p: sp.MatrixExpr, convention: str) -> sp.MatrixExpr:
    """gᵀ(diag(p) − p pᵀ) written as a vector: p ⊙ g − p (pᵀ g) (row convention: p ⊙ g − (g pᵀ) p)."""
    scaled = sp.MatMul(p, sp.MatMul(p.T, g)) if convention == "column" else sp.MatMul(sp.MatMul(g, p.T), p)
    return sp.MatAdd(HadamardProduct(p, g), -scaled, evaluate=False)


def outer_product(delta: sp.MatrixExpr, a: sp.MatrixExpr, convention: str) -> sp.MatrixExpr:
    """δᵀ (I ⊗ aᵀ) regrouped into W's shape: δ aᵀ (column), aᵀ δ (row)."""
    return sp.MatMul(delta, a.T) if convention == "column" else sp.MatMul(a.T, delta)


def error_multiple(c: sp.Expr, yhat: sp.MatrixExpr, y: sp.MatrixExpr) -> sp.MatrixExpr:
    """c (ŷ − y)."""
    error = sp.MatAdd(yhat, -y)
    return error if c == 1 else sp.MatMul(c, error)


def error_coefficient(entries: sp.MatrixBase, yhat, y, constraint) -> sp.Expr | None:
    """The constant c with entry_k = c (ŷ_k − y_k) for every k, if there is one."""
    first = entries[0].xreplace(constraint) if constraint else entries[0]
    c = sp.cancel(sp.together(first / (yhat[0] - y[0])))
    if c.free_symbols:
        return None
    for e, a, b in zip(entries, yhat, y):
        diff = e - c * (a - b)
        if not entry_is_zero(diff.xreplace(constraint) if constraint else diff):
            return None
    return c


# ----------------------------------------------------------------------------------------------
# The engine


def reshape(row: sp.MatrixBase, shape: tuple[int, int], vec: str) -> sp.ImmutableMatrix:
    """A 1 × (mn) row indexed by vec(W) back into W's m × n shape."""
    rows, cols = shape
    if vec == "row-major":
        return sp.ImmutableMatrix(rows, cols, lambda i, j: row[i * cols + j])
    return sp.ImmutableMatrix(rows, cols, lambda i, j: row[j * rows + i])


def _activation_step(g: sp.MatrixExpr, jac: LocalJacobian, blocks: Blocks) -> tuple[str, sp.MatrixExpr]:
    """Apply ∂h/∂z (transposed, as a vector) to the vector g, by the rule its structure calls for."""
    if jac.structure == "identity":
        return "identity", drop_identity(g)
    if jac.structure == "diagonal":
        assert isinstance(jac.block, DiagMatrix)
        return "diagonal to Hadamard", diagonal_to_hadamard(g, jac.block.args[0])
    if jac.structure == "softmax":
        return "softmax Jacobian", softmax_product(g, blocks[jac.of], blocks.convention)
    # A Jacobian with no known structure stays a product.
    return "chain rule", sp.MatMul(jac.block.T, g) if blocks.convention == "column" else sp.MatMul(g, jac.block)


class Engine:
    """Builds every chain of one network; δ rows are multiplied out once and reused."""

    def __init__(self, net: SymbolicNetwork, blocks: Blocks, jac: Jacobians) -> None:
        self.net, self.blocks, self.jac = net, blocks, jac
        self.column = blocks.convention == "column"
        self.delta_rows: dict[int, sp.ImmutableMatrix] = {}  # ∂L/∂z{l}, explicit, as 1 × n rows
        self.delta_prefix: dict[int, tuple[str, ...]] = {}

    def orient(self, row: sp.MatrixBase) -> sp.ImmutableMatrix:
        """A Jacobian row as the convention writes the vector."""
        return sp.ImmutableMatrix(row.T if self.column else row)

    def vector_lhs(self, name: str) -> sp.MatrixExpr:
        return self.blocks[name]

    def row_lhs(self, name: str) -> sp.MatrixExpr:
        return self.blocks.as_row(self.blocks[name])

    def _step(self, rule: str, lhs, rhs, reference: sp.MatrixBase, constraint=None, **env) -> Step:
        value = evaluate(rhs, self.blocks.env(**env))
        return Step(rule, lhs, rhs, equal(value, reference, constraint))

    # -- δ -----------------------------------------------------------------------------------

    def output_delta(self) -> Chain:
        net, blocks, L = self.net, self.blocks, self.net.depth
        d = naming.delta(L)
        loss_jac, act_jac = self.jac.loss, self.jac.activation[L]
        row = loss_jac.matrix * act_jac.matrix
        self.delta_rows[L] = sp.ImmutableMatrix(row)
        factors = (loss_jac.name, act_jac.name)
        self.delta_prefix[L] = factors
        constraint = net.target_constraint()
        gL = blocks[naming.LOSS_GRADIENT]
        steps = [self._step("chain rule", self.row_lhs(d), sp.MatMul(loss_jac.block, act_jac.block), row)]
        vector_ref = self.orient(row)
        rule, form = _activation_step(gL, act_jac, blocks)
        if rule != "chain rule":
            steps.append(self._step(rule, self.vector_lhs(d), form, vector_ref))
        yhat, y = blocks["yhat"], blocks["y"]
        c = error_coefficient(list(row), net.yhat, net.y, constraint)
        if c is not None and act_jac.structure != "identity":
            fused = error_multiple(c, yhat, y)
            steps.append(self._step(self._fusion_rule(act_jac), self.vector_lhs(d), fused, vector_ref,
                                    constraint))
        else:
            c_loss = error_coefficient(list(loss_jac.matrix), net.yhat, net.y, constraint)
            if c_loss is not None:
                closed = steps[-1].rhs.xreplace({gL: error_multiple(c_loss, yhat, y)})
                steps.append(self._step("loss gradient", self.vector_lhs(d), closed, vector_ref, constraint))
        return Chain(d, factors, self.orient(row), tuple(steps))

    def _fusion_rule(self, act_jac: LocalJacobian) -> str:
        activation = self.net.layers[-1].activation.name
        if act_jac.structure == "softmax" and self.net.loss.name == "ce":
            return "softmax + cross-entropy"
        if activation == "sigmoid" and self.net.loss.name in ("bce", "mean_bce"):
            return "sigmoid + binary cross-entropy"
        return "cancellation"

    def hidden_delta(self, l: int) -> Chain:
        blocks = self.blocks
        d, d_next = naming.delta(l), naming.delta(l + 1)
        in_jac, act_jac = self.jac.inputs[l + 1], self.jac.activation[l]
        next_row = blocks.as_row(blocks[d_next])
        local = evaluate(next_row, blocks.env()) * in_jac.matrix * act_jac.matrix  # δ⁽ˡ⁺¹⁾ as free symbols
        self.delta_rows[l] = sp.ImmutableMatrix(self.delta_rows[l + 1] * in_jac.matrix * act_jac.matrix)
        factors = (d_next, in_jac.name, act_jac.name)
        self.delta_prefix[l] = (*self.delta_prefix[l + 1], in_jac.name, act_jac.name)
        steps = [self._step("chain rule", self.row_lhs(d), sp.MatMul(next_row, in_jac.block, act_jac.block),
                            local)]
        vector_ref = self.orient(local)
        if self.column:
            g = dense_transpose(next_row, blocks[f"W{l + 1}"])
            if act_jac.structure in ("identity", "diagonal", "softmax"):  # symmetric: Jᵀ = J
                steps.append(self._step("dense transpose", self.vector_lhs(d), sp.MatMul(act_jac.block, g),
                                        vector_ref))
        else:
            g = sp.MatMul(next_row, in_jac.block)
        rule, form = _activation_step(g, act_jac, blocks)
        steps.append(self._step(rule, self.vector_lhs(d), form, vector_ref))
        return Chain(d, factors, self.orient(self.delta_rows[l]), tuple(steps))

    # -- parameters ------------------------------------------------------------------------------

    def _gradient_lhs(self, param: str, shape: tuple[int, int]) -> sp.MatrixSymbol:
        return sp.MatrixSymbol(naming.gradient_block(param), *shape)

    def _layout(self, steps: list[Step], param: str, explicit: sp.ImmutableMatrix) -> sp.ImmutableMatrix:
        if self.net.spec.layout == "numerator":
            last = steps[-1]
            lhs = self._gradient_lhs(param, last.lhs.shape[::-1])
            rhs = last.rhs.T
            steps.append(self._step("numerator layout", lhs, rhs, evaluate(last.rhs, self.blocks.env()).T))
            return sp.ImmutableMatrix(explicit.T)
        return explicit

    def weight_gradient(self, l: int) -> Chain:
        blocks, W = self.blocks, self.blocks[f"W{l}"]
        d = naming.delta(l)
        wjac = self.jac.weights[l]
        row = sp.ImmutableMatrix(self.delta_rows[l] * wjac.matrix)
        factors = (*self.delta_prefix[l], wjac.name)
        full = sp.MatMul(*[self._factor_block(f) for f in factors])
        vec_lhs = sp.MatrixSymbol(naming.vec_gradient_block(l), 1, row.cols)
        delta_row = blocks.as_row(blocks[d])
        explicit_delta = self.orient(self.delta_rows[l])
        steps = [
            Step("chain rule", vec_lhs, full, True),  # `row` is this product, multiplied out
            self._step("delta reuse", vec_lhs, sp.MatMul(delta_row, wjac.block), row, **{d: explicit_delta}),
        ]
        local_row = evaluate(sp.MatMul(delta_row, wjac.block), blocks.env())
        outer = outer_product(blocks[d], blocks[naming.input_block(l)], blocks.convention)
        shaped_local = reshape(local_row, W.shape, self.net.spec.vec)
        steps.append(self._step("flattened weight to outer product", self._gradient_lhs(f"W{l}", W.shape),
                                outer, shaped_local))
        explicit = self._layout(steps, f"W{l}", reshape(row, W.shape, self.net.spec.vec))
        return Chain(f"W{l}", factors, explicit, tuple(steps))

    def bias_gradient(self, l: int) -> Chain:
        blocks, b = self.blocks, self.blocks[f"b{l}"]
        d = naming.delta(l)
        bjac = self.jac.biases[l]
        row = sp.ImmutableMatrix(self.delta_rows[l] * bjac.matrix)
        factors = (*self.delta_prefix[l], bjac.name)
        row_lhs = sp.MatrixSymbol(naming.gradient_block(f"b{l}"), 1, row.cols)
        delta_row = blocks.as_row(blocks[d])
        explicit_delta = self.orient(self.delta_rows[l])
        steps = [
            Step("chain rule", row_lhs, sp.MatMul(*[self._factor_block(f) for f in factors]), True),
            self._step("delta reuse", row_lhs, sp.MatMul(delta_row, bjac.block), row, **{d: explicit_delta}),
            self._step("identity", self._gradient_lhs(f"b{l}", b.shape), blocks[d], self.orient(row),
                       **{d: explicit_delta}),
        ]
        explicit = self._layout(steps, f"b{l}", self.orient(row))
        return Chain(f"b{l}", factors, explicit, tuple(steps))

    def _factor_block(self, name: str) -> sp.MatrixExpr:
        for jac in self.jac.in_order():
            if jac.name == name:
                return jac.block
        raise KeyError(name)


def build_chains(net: SymbolicNetwork, blocks: Blocks, jac: Jacobians) -> tuple[list[Chain], list[Chain]]:
    """δ for every layer (output first), then the gradient of every parameter (layer 1 first)."""
    engine = Engine(net, blocks, jac)
    deltas = [engine.output_delta()]
    for l in range(net.depth - 1, 0, -1):
        deltas.append(engine.hidden_delta(l))
    gradients: list[Chain] = []
    for layer in net.layers:
        gradients.append(engine.weight_gradient(layer.index))
        if layer.b is not None:
            gradients.append(engine.bias_gradient(layer.index))
    return deltas, gradients

