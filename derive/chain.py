"""The backward pass, layer by layer from the output: each quantity from the one it receives.

For every layer, going backward, the engine derives in order
- the gradient arriving at the layer's output: ∂L/∂ŷ from the loss, or ∂L/∂h⁽ˡ⁾ from δ⁽ˡ⁺¹⁾;
- δ⁽ˡ⁾ = ∂L/∂z⁽ˡ⁾ from that gradient and the activation's Jacobian;
- ∂L/∂W⁽ˡ⁾ and ∂L/∂b⁽ˡ⁾ from δ⁽ˡ⁾ and the flattened-weight and bias Jacobians.

Each derivation is a list of steps: the chain rule, the product multiplied out in terms of the quantity
received (kept as free symbols, never expanded into the whole loss), then rewrites by named rules into
the compact forms people use. Every step carries a `Check`: the rewrites are evaluated over the
components and compared with the product by `identities.equal`; chained together, the local checks
prove each compact form for the whole network, and no check grows with depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions import DiagMatrix, HadamardProduct

from derive import naming
from derive.blocks import Blocks
from derive.checks import DIFFERENTIATED, MULTIPLIED, Check
from derive.forms import readable_matrix
from derive.identities import entry_is_zero, equal, evaluate
from derive.jacobians import Jacobians, LocalJacobian
from derive.network import SymbolicNetwork


@dataclass(frozen=True)
class Rule:
    name: str
    reason: str


# Each reason is written without letters and without a convention, so that it reads true in every
# notation a spec chooses; the formula beside it says the rest in the course's own letters.
RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("differentiation", "the loss differentiated by each output"),
    Rule("simplified", "each entry in a shorter, equal form (over one denominator, factored, signs turned round)"),
    Rule("chain rule", "the loss depends on this quantity only through the next one, so its gradient is the "
                       "gradient received times the local Jacobian"),
    Rule("delta reuse", "the factors before the last are this layer's error, already computed"),
    Rule("multiplied out", "the product, entry by entry, in the components of the gradient received"),
    Rule("summed out", "the sum written out term by term"),
    Rule("identity", "an identity Jacobian passes the gradient through unchanged"),
    Rule("dense transpose", "a row times the weight matrix is, written as a column, the transposed weight matrix "
                            "times that column"),
    Rule("diagonal to Hadamard", "a diagonal Jacobian scales each entry on its own: an elementwise (Hadamard) "
                                 "product"),
    Rule("softmax Jacobian", "the softmax Jacobian is diagonal minus a rank-one outer product of the output, so "
                             "applied to a vector it scales the vector by the output and subtracts the output "
                             "times their dot product"),
    Rule("upstream substituted", "the gradient received, replaced by its compact form from the layer above"),
    Rule("regrouped", "each entry of the row belongs to one weight: put in that weight's place"),
    Rule("multiplied out, regrouped", "the error times the flattened-weight Jacobian, each entry put in its "
                                      "weight's place"),
    Rule("flattened weight to outer product", "the gradient of one weight is its unit's error times the input "
                                              "that weight multiplies: an outer product"),
    Rule("loss gradient", "a multiple of the error, prediction minus target"),
    Rule("loss gradient substituted", "the loss gradient, a multiple of the error, put in"),
    Rule("softmax + cross-entropy", "the log-loss's reciprocal cancels the softmax Jacobian, and the targets sum "
                                    "to 1"),
    Rule("sigmoid + binary cross-entropy", "the sigmoid's derivative is a factor of the denominator of the loss's "
                                           "derivative, and the two cancel"),
    Rule("cancellation", "the loss's derivative and the activation's cancel into the error"),
    Rule("transposed", "the same entries, written as a column"),
    Rule("numerator layout", "numerator layout arranges the gradient as the Jacobian does: the shape of the "
                             "transposed parameter"),
)}


@dataclass(frozen=True)
class Step:
    """One displayed formula, lhs = rhs: rhs is a block expression, or an explicit matrix."""

    rule: str
    lhs: sp.Basic
    rhs: sp.Basic
    check: Check

    @property
    def verified(self) -> bool:
        return self.check.passed

    @property
    def reason(self) -> str:
        return RULES[self.rule].reason

    @property
    def explicit(self) -> bool:
        return isinstance(self.rhs, sp.MatrixBase)


@dataclass(frozen=True)
class Chain:
    """One quantity's derivation: the factors it is the product of, and its steps."""

    target: str                    # gL, dL_dh1, delta1, W1, b1
    layer: int
    kind: str                      # loss | upstream | delta | weight | bias
    factors: tuple[str, ...]       # the local chain: what it receives, then the local Jacobian
    full_chain: tuple[str, ...]    # every Jacobian from the loss down to this quantity
    steps: tuple[Step, ...]

    @property
    def final(self) -> Step | None:
        """The last step in block form: the compact result (None for a loss gradient with none)."""
        return next((s for s in reversed(self.steps) if not s.explicit), None)

    @property
    def lhs(self) -> sp.MatrixExpr:
        return (self.final or self.steps[-1]).lhs

    @property
    def compact(self) -> sp.MatrixExpr | None:
        return self.final.rhs if self.final is not None else None

    @property
    def verified(self) -> bool:
        return all(s.verified for s in self.steps)

    @property
    def local(self) -> sp.ImmutableMatrix | None:
        """The product multiplied out, as displayed (the last explicit step)."""
        explicit = [s.rhs for s in self.steps if s.explicit]
        return explicit[-1] if explicit else None


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


# ----------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class LayerBackward:
    """One layer's part of the backward pass, in the order a handout takes it."""

    layer: int
    upstream: Chain            # ∂L/∂ŷ for the output layer (the loss gradient), else ∂L/∂h⁽ˡ⁾
    delta: Chain
    weight: Chain
    bias: Chain | None

    @property
    def chains(self) -> tuple[Chain, ...]:
        return tuple(c for c in (self.upstream, self.delta, self.weight, self.bias) if c is not None)


class Engine:
    """Builds every layer's chains, output layer first."""

    def __init__(self, net: SymbolicNetwork, blocks: Blocks, jac: Jacobians) -> None:
        self.net, self.blocks, self.jac = net, blocks, jac
        self.column = blocks.convention == "column"
        self.readers = net.readers()
        self.prefix: dict[int, tuple[str, ...]] = {}  # the Jacobians from the loss down to z{l}

    def row(self, name: str) -> sp.MatrixExpr:
        return self.blocks.as_row(self.blocks[name])

    def orient(self, row: sp.MatrixBase) -> sp.ImmutableMatrix:
        """A Jacobian row as the convention writes the vector."""
        return sp.ImmutableMatrix(row.T if self.column else row)

    def expand_check(self, rhs: sp.MatrixExpr, reference: sp.MatrixBase, detail: str = "", constraint=None,
                     **env: sp.ImmutableMatrix) -> Check:
        value = evaluate(rhs, self.blocks.env(**env))
        return Check("expand", equal(value, reference, constraint), detail)

    def chain_rule_check(self, block: str, through: str, rhs: sp.MatrixExpr, product: sp.MatrixBase) -> Check:
        """Every component of the block is read by `through` alone, and the block form equals the
        product of the Jacobians."""
        only = all(self.readers.get(s, frozenset()) <= {through} for s in self.blocks.values[block])
        value = evaluate(rhs, self.blocks.env())
        return Check("chain rule", only and equal(value, product), f"{block} is read only by {through}")

    # -- the output layer ----------------------------------------------------------------------

    def loss_gradient(self) -> tuple[Chain, sp.ImmutableMatrix]:
        """∂L/∂ŷ: differentiated, then each entry in a readable form, then c(ŷ − y) where it is one."""
        net, blocks, L = self.net, self.blocks, self.net.depth
        raw = self.jac.loss.matrix  # 1 × K, as differentiated
        gL = blocks[naming.LOSS_GRADIENT]
        row_lhs = blocks.as_row(gL)
        steps = [Step("differentiation", row_lhs, raw, DIFFERENTIATED)]
        tidy = readable_matrix(raw, frozenset(net.yhat), tuple(zip(net.yhat, net.y)))
        if tidy != raw:
            steps.append(Step("simplified", row_lhs, tidy, Check("expand", equal(tidy, raw))))
        c = error_coefficient(list(raw), net.yhat, net.y, {})
        if c is not None:
            form = error_multiple(c, blocks["yhat"], blocks["y"])
            steps.append(Step("loss gradient", gL, form, self.expand_check(form, self.orient(raw))))
        chain = Chain(naming.LOSS_GRADIENT, L, "loss", (), (self.jac.loss.name,), tuple(steps))
        return chain, tidy

    def output_delta(self, loss_row: sp.ImmutableMatrix) -> Chain:
        net, blocks, L = self.net, self.blocks, self.net.depth
        d = naming.delta(L)
        loss_jac, act_jac = self.jac.loss, self.jac.activation[L]
        gL = blocks[naming.LOSS_GRADIENT]
        gL_row = blocks.as_row(gL)
        self.prefix[L] = (loss_jac.name, act_jac.name)
        raw_product = sp.ImmutableMatrix(loss_jac.matrix * act_jac.matrix)
        first = gL_row if act_jac.structure == "identity" else sp.MatMul(gL_row, act_jac.block)
        steps = [Step("chain rule", self.row(d), first,
                      self.chain_rule_check(f"z{L}", "yhat", first, raw_product))]
        vector_ref = self.orient(raw_product)
        constraint = net.target_constraint()
        # The block rewrite first (g ⊙ σ′, or the softmax's), then what it is entry by entry.
        # A softmax's product is not multiplied out: its entries are sums over every output, and the
        # index form derives one generic entry instead.
        block_form = gL
        if act_jac.structure != "identity":
            rule, form = _activation_step(gL, act_jac, blocks)
            if rule != "chain rule":
                steps.append(Step(rule, blocks[d], form, self.expand_check(form, vector_ref)))
                block_form = form
        if act_jac.structure == "diagonal":
            # Each entry as the two factors that meet, before they cancel: the lesson of a fused loss.
            factors = sp.ImmutableMatrix(1, loss_row.cols, [sp.Mul(g, act_jac.matrix[k, k], evaluate=False)
                                                            for k, g in enumerate(loss_row)])
            product = sp.ImmutableMatrix(loss_row * act_jac.matrix)
            steps.append(Step("multiplied out", self.row(d), factors,
                              Check("expand", equal(sp.ImmutableMatrix(factors.applyfunc(sp.expand)),
                                                    sp.ImmutableMatrix(product.applyfunc(sp.expand))))))
            tidy = readable_matrix(product, frozenset(net.yhat))
            cancelled = any(sp.count_ops(p) < sp.count_ops(f, visual=False) for p, f in zip(product, factors))
            if tidy != product or cancelled:
                steps.append(Step("simplified", self.row(d), tidy, Check("expand", equal(tidy, product))))
        c = error_coefficient(list(raw_product), net.yhat, net.y, constraint)
        yhat, y = blocks["yhat"], blocks["y"]
        if c is not None and act_jac.structure != "identity":
            fused = error_multiple(c, yhat, y)
            detail = "with the targets summing to 1" if constraint else ""
            steps.append(Step(self._fusion_rule(act_jac), blocks[d], fused,
                              self.expand_check(fused, vector_ref, detail, constraint)))
        else:
            c_loss = error_coefficient(list(loss_jac.matrix), net.yhat, net.y, constraint)
            if act_jac.structure == "identity" and c_loss is None:
                steps.append(Step("identity", blocks[d], gL, self.expand_check(gL, vector_ref)))
            elif c_loss is not None:
                closed = block_form.xreplace({gL: error_multiple(c_loss, yhat, y)})
                rule = "loss gradient" if act_jac.structure == "identity" else "loss gradient substituted"
                steps.append(Step(rule, blocks[d], closed,
                                  self.expand_check(closed, vector_ref, "", constraint)))
        return Chain(d, L, "delta", (naming.LOSS_GRADIENT, act_jac.name), self.prefix[L], tuple(steps))

    def _fusion_rule(self, act_jac: LocalJacobian) -> str:
        activation = self.net.layers[-1].activation.name
        if act_jac.structure == "softmax" and self.net.loss.name == "ce":
            return "softmax + cross-entropy"
        if activation == "sigmoid" and self.net.loss.name in ("bce", "mean_bce"):
            return "sigmoid + binary cross-entropy"
        return "cancellation"

    # -- a hidden layer ------------------------------------------------------------------------

    def upstream(self, l: int) -> Chain:
        """∂L/∂h⁽ˡ⁾ = δ⁽ˡ⁺¹⁾ᵀ ∂z⁽ˡ⁺¹⁾/∂h⁽ˡ⁾, with δ⁽ˡ⁺¹⁾ free."""
        blocks = self.blocks
        u, d_next = naming.upstream(l), naming.delta(l + 1)
        in_jac = self.jac.inputs[l + 1]
        next_row = self.row(d_next)
        product = sp.ImmutableMatrix(evaluate(next_row, blocks.env()) * in_jac.matrix)
        first = sp.MatMul(next_row, in_jac.block)
        steps = [
            Step("chain rule", self.row(u), first,
                 self.chain_rule_check(naming.activation_block(l, False), f"z{l + 1}", first, product)),
            Step("multiplied out", self.row(u), product, MULTIPLIED),
        ]
        if self.column:
            form = dense_transpose(next_row, blocks[f"W{l + 1}"])
            steps.append(Step("dense transpose", blocks[u], form,
                              self.expand_check(form, self.orient(product), f"{d_next} as free symbols")))
        full = (*self.prefix[l + 1], in_jac.name)
        return Chain(u, l, "upstream", (d_next, in_jac.name), full, tuple(steps))

    def hidden_delta(self, l: int, upstream: Chain) -> Chain:
        """δ⁽ˡ⁾ from ∂L/∂h⁽ˡ⁾ (free), then with ∂L/∂h⁽ˡ⁾'s compact form put in."""
        blocks = self.blocks
        d, u = naming.delta(l), naming.upstream(l)
        act_jac = self.jac.activation[l]
        received = self.row(u)
        product = sp.ImmutableMatrix(evaluate(received, blocks.env()) * act_jac.matrix)
        first = received if act_jac.structure == "identity" else sp.MatMul(received, act_jac.block)
        self.prefix[l] = (*upstream.full_chain, act_jac.name)
        steps = [Step("chain rule", self.row(d), first,
                      self.chain_rule_check(f"z{l}", f"h{l}", first, product))]
        free = f"{u} as free symbols"
        rule, form = _activation_step(blocks[u], act_jac, blocks)
        if act_jac.structure != "identity":  # the block rewrite, then what it is entry by entry
            steps.append(Step(rule, blocks[d], form, self.expand_check(form, self.orient(product), free)))
            steps.append(Step("multiplied out", self.row(d), product, MULTIPLIED))
        # The same rule applied to the compact ∂L/∂h⁽ˡ⁾: the form the code computes.
        _, final = _activation_step(upstream.compact, act_jac, blocks)
        up_value = evaluate(upstream.compact, blocks.env())
        up_row = up_value.T if self.column else up_value
        reference = self.orient(sp.ImmutableMatrix(up_row * act_jac.matrix))
        steps.append(Step("upstream substituted", blocks[d], final,
                          self.expand_check(final, reference, f"{naming.delta(l + 1)} as free symbols")))
        return Chain(d, l, "delta", (u, act_jac.name), self.prefix[l], tuple(steps))

    # -- parameters ------------------------------------------------------------------------------

    def _gradient_lhs(self, param: str, shape: tuple[int, int]) -> sp.MatrixSymbol:
        return sp.MatrixSymbol(naming.gradient_block(param), *shape)

    def _numerator(self, steps: list[Step], param: str) -> None:
        if self.net.spec.layout == "numerator":
            last = steps[-1]
            lhs = self._gradient_lhs(param, last.lhs.shape[::-1])
            rhs = last.rhs.T
            steps.append(Step("numerator layout", lhs, rhs,
                              self.expand_check(rhs, evaluate(last.rhs, self.blocks.env()).T)))

    def weight_gradient(self, l: int) -> Chain:
        blocks, W = self.blocks, self.blocks[f"W{l}"]
        d = naming.delta(l)
        wjac = self.jac.weights[l]
        delta_row = self.row(d)
        row = sp.ImmutableMatrix(evaluate(delta_row, blocks.env()) * wjac.matrix)
        vec_lhs = sp.MatrixSymbol(naming.vec_gradient_block(l), 1, row.cols)
        first = sp.MatMul(delta_row, wjac.block)
        free = f"{d} as free symbols"
        regrouped = reshape(row, W.shape, self.net.spec.vec)
        # Shaped like W, the gradient is ∂L/∂W in gradient layout and its transpose in numerator layout.
        lhs = self._gradient_lhs(f"W{l}", W.shape) if self.net.spec.layout == "gradient" else \
            self._gradient_lhs(f"W{l}", W.shape[::-1]).T
        outer = outer_product(blocks[d], blocks[naming.input_block(l)], blocks.convention)
        back = sp.ImmutableMatrix(1, row.cols, list(_flatten(regrouped, self.net.spec.vec)))
        steps = [
            Step("delta reuse", vec_lhs, first,
                 self.chain_rule_check(f"W{l}", f"z{l}", first, row)),
            Step("multiplied out", vec_lhs, row, MULTIPLIED),
            Step("regrouped", lhs, regrouped, Check("expand", equal(back, row), f"vec order {self.net.spec.vec}")),
            Step("flattened weight to outer product", lhs, outer, self.expand_check(outer, regrouped, free)),
        ]
        self._numerator(steps, f"W{l}")
        return Chain(f"W{l}", l, "weight", (d, wjac.name), (*self.prefix[l], wjac.name), tuple(steps))

    def bias_gradient(self, l: int) -> Chain:
        blocks, b = self.blocks, self.blocks[f"b{l}"]
        d = naming.delta(l)
        bjac = self.jac.biases[l]
        delta_row = self.row(d)
        row = sp.ImmutableMatrix(evaluate(delta_row, blocks.env()) * bjac.matrix)
        numerator = self.net.spec.layout == "numerator"
        grad = self._gradient_lhs(f"b{l}", b.shape[::-1] if numerator else b.shape)
        # The chain rule gives ∂L/∂b as a row: the gradient itself where that is a row, else its transpose
        # (a single unit's too, under the column convention: (∂L/∂b)ᵀ = δᵀ, then ∂L/∂b = δ).
        row_lhs = grad if grad.shape[0] == 1 and not (self.column and grad.shape == (1, 1) and not numerator) \
            else grad.T
        steps = [Step("delta reuse", row_lhs, delta_row, self.chain_rule_check(f"b{l}", f"z{l}", delta_row, row))]
        if row_lhs is not grad:
            column = delta_row.T
            steps.append(Step("numerator layout" if numerator else "transposed", grad, column,
                              self.expand_check(column, sp.ImmutableMatrix(row.T), f"{d} as free symbols")))
        return Chain(f"b{l}", l, "bias", (d, bjac.name), (*self.prefix[l], bjac.name), tuple(steps))


def _flatten(m: sp.MatrixBase, vec: str) -> list[sp.Expr]:
    """vec(M) in the spec's order: the inverse of `reshape`."""
    if vec == "row-major":
        return [m[i, j] for i in range(m.rows) for j in range(m.cols)]
    return [m[i, j] for j in range(m.cols) for i in range(m.rows)]


def backward_pass(net: SymbolicNetwork, blocks: Blocks, jac: Jacobians) -> tuple[LayerBackward, ...]:
    """Every layer's chains, output layer first: the order of the seeds' handouts."""
    engine = Engine(net, blocks, jac)
    L = net.depth
    loss, loss_row = engine.loss_gradient()
    layers = []
    upstream = loss
    for l in range(L, 0, -1):
        if l < L:
            upstream = engine.upstream(l)
            delta = engine.hidden_delta(l, upstream)
        else:
            delta = engine.output_delta(loss_row)
        bias = engine.bias_gradient(l) if net.layers[l - 1].b is not None else None
        layers.append(LayerBackward(l, upstream, delta, engine.weight_gradient(l), bias))
    return tuple(layers)
