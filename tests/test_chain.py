"""Each rewrite rule alone, then the engine's records."""

import re

import pytest
import sympy as sp
from hypothesis import given, settings
from sympy.matrices.expressions import DiagMatrix, KroneckerProduct

from derive.chain import (
    RULES,
    dense_transpose,
    diagonal_to_hadamard,
    drop_identity,
    error_coefficient,
    outer_product,
    reshape,
    softmax_product,
)
from derive.derivation import derive
from derive.identities import equal, evaluate
from derive.spec import load_preset, preset_names, spec_from_flags

from .helpers import derive_cached, specs, sweep

n = 3
g = sp.MatrixSymbol("g", n, 1)
d = sp.MatrixSymbol("d", n, 1)
p = sp.MatrixSymbol("p", n, 1)
W = sp.MatrixSymbol("W", 2, n)
delta = sp.MatrixSymbol("delta", 2, 1)
a = sp.MatrixSymbol("a", n, 1)
G, D, P = (sp.ImmutableMatrix(sp.symbols(f"{s}1:{n + 1}")) for s in "gdp")
ENV = {g: G, d: D, p: P, a: sp.ImmutableMatrix(sp.symbols("a1:4")),
       W: sp.ImmutableMatrix(2, n, sp.symbols("w1:7")), delta: sp.ImmutableMatrix(sp.symbols("e1:3"))}


def test_identity_rule():
    assert equal(evaluate(drop_identity(g), ENV), evaluate(g.T * sp.Identity(n), ENV).T)


def test_dense_transpose_rule():
    assert equal(evaluate(dense_transpose(delta.T, W), ENV), evaluate(delta.T * W, ENV).T)


def test_diagonal_to_hadamard_rule():
    assert equal(evaluate(diagonal_to_hadamard(g, d), ENV), evaluate(g.T * DiagMatrix(d), ENV).T)


def test_softmax_rule_under_both_conventions():
    jac = sp.diag(*P) - P * P.T
    assert equal(evaluate(softmax_product(g, p, "column"), ENV), (G.T * jac).T)
    env_row = {sp.MatrixSymbol("g", 1, n): G.T, sp.MatrixSymbol("p", 1, n): P.T}
    row = softmax_product(sp.MatrixSymbol("g", 1, n), sp.MatrixSymbol("p", 1, n), "row")
    assert equal(evaluate(row, env_row), G.T * jac)


def test_outer_product_rule_is_the_regrouped_flattened_product():
    flat = evaluate(delta.T * KroneckerProduct(sp.Identity(2), a.T), ENV)
    assert equal(evaluate(outer_product(delta, a, "column"), ENV), reshape(flat, (2, n), "row-major"))


def test_reshape_orders():
    row = sp.Matrix([[1, 2, 3, 4, 5, 6]])
    assert reshape(row, (2, 3), "row-major") == sp.Matrix([[1, 2, 3], [4, 5, 6]])
    assert reshape(row, (2, 3), "column-major") == sp.Matrix([[1, 3, 5], [2, 4, 6]])


def test_error_coefficient():
    yh, y = sp.symbols("p1 p2"), sp.symbols("t1 t2")
    assert error_coefficient([2 * (yh[0] - y[0]), 2 * (yh[1] - y[1])], yh, y, {}) == 2
    assert error_coefficient([yh[0] - y[0], yh[1] * y[1]], yh, y, {}) is None
    # cross-entropy's row needs Σ y = 1
    row = [-y[0] + yh[0] * (y[0] + y[1]), -y[1] + yh[1] * (y[0] + y[1])]
    assert error_coefficient(row, yh, y, {}) is None
    assert error_coefficient(row, yh, y, {y[1]: 1 - y[0]}) == 1


@pytest.mark.parametrize("name", preset_names())
def test_each_rule_used_gives_its_reason_once_at_first_use(name):
    from derive.render.text import render_text

    d = derive(load_preset(name))
    text = render_text(d)
    marks = list(re.finditer(r"✓ ([^:\[\n]+?)(?::| \[|\n)", text))
    used = {s.rule for c in d.chains for s in c.steps}
    shown = {m.group(1) for m in marks} & (used | {"multiplied out, regrouped"})  # how "regrouped" reads where
    assert shown >= used - {"regrouped"}                                          # its row is not shown
    for rule in shown:
        assert text.count(f"✓ {rule}: {RULES[rule].reason}") == 1, rule
        first = next(m for m in marks if m.group(1) == rule)  # the reason stands with the rule's first mark
        assert text[first.start():].startswith(f"✓ {rule}: {RULES[rule].reason}"), rule


def test_a_wrong_rewrite_is_not_verified():
    """The checker really checks: a compact form that differs from the product fails."""
    from derive.chain import Engine

    dv = derive(spec_from_flags(2, "2:relu,1:identity"))
    engine = Engine(dv.network, dv.blocks, dv.jacobians)
    regrouped = next(s.rhs for s in dv.gradient("W1").steps if s.rule == "regrouped")
    right = sp.MatMul(dv.blocks["delta1"], dv.blocks["x"].T)
    assert engine.expand_check(right, regrouped).passed
    assert not engine.expand_check(right * 2, regrouped).passed


@pytest.mark.parametrize("layers, loss, rule", [("3:softmax", "ce", "softmax + cross-entropy"),
                                                 ("2:sigmoid", "bce", "sigmoid + binary cross-entropy"),
                                                 ("2:identity", "sse", "loss gradient")])
def test_a_wrong_error_multiple_is_not_verified(monkeypatch, layers, loss, rule):
    """Every step that writes δ as c(ŷ − y) checks it: with c doubled, the step is NOT VERIFIED (and the
    derivation with it), for the fused losses as for the plain one."""
    import derive.chain as chain

    right = chain.error_multiple
    monkeypatch.setattr(chain, "error_multiple", lambda c, yhat, y: right(2 * c, yhat, y))
    d = derive(spec_from_flags(2, layers, loss=loss))
    step = next(s for s in d.delta(1).steps if s.rule == rule)
    assert not step.verified and not d.verified


def test_seed_000_steps_in_order():
    dv = derive(spec_from_flags(2, "2:relu,1:identity"))
    assert [s.rule for s in dv.gradient("W1").steps] == [
        "delta reuse", "multiplied out", "regrouped", "flattened weight to outer product"]
    assert [s.rule for s in dv.layer(1).upstream.steps] == ["chain rule", "multiplied out", "dense transpose"]
    assert [s.rule for s in dv.delta(1).steps] == [
        "chain rule", "diagonal to Hadamard", "multiplied out", "upstream substituted"]
    assert [s.rule for s in dv.delta(2).steps] == ["chain rule", "loss gradient"]
    assert dv.verified


def test_backward_order_layer_by_layer():
    """The loss gradient, then per layer from the output: the gradient received, δ, then W and b."""
    dv = derive(spec_from_flags(3, "2:relu,2:tanh,1:identity"))
    assert [c.target for c in dv.chains] == ["gL", "delta3", "W3", "b3", "dL_dh2", "delta2", "W2", "b2",
                                             "dL_dh1", "delta1", "W1", "b1"]


@settings(max_examples=sweep(12, 60))
@given(specs(max_depth=4, max_width=3))
def test_each_step_is_multiplied_out_in_what_it_receives(spec):
    """Local steps: an explicit entry holds the components of the quantity the step receives and the
    layer's own symbols, never the expansion of the whole loss (no δ of another layer, no y below
    the output, no weight of a layer but the next)."""
    d = derive_cached(spec)
    L = d.network.depth
    for c in d.chains:
        if c.kind == "loss":
            continue
        allowed = {"upstream": (f"delta{c.layer + 1}_", f"W{c.layer + 1}_"),
                   "delta": (f"dL_dh{c.layer}_", f"z{c.layer}_", f"h{c.layer}_", "yhat_", "y_")
                   if c.layer == L else (f"dL_dh{c.layer}_", f"z{c.layer}_", f"h{c.layer}_"),
                   "weight": (f"delta{c.layer}_", "x_", f"h{c.layer - 1}_"),
                   "bias": (f"delta{c.layer}_",)}[c.kind]
        for s in c.steps:
            if s.explicit:
                for symbol in s.rhs.free_symbols:
                    assert symbol.name.startswith(allowed), (c.target, s.rule, symbol)


def test_the_loss_gradient_is_simplified_first():
    from derive.render.printers import TextPrinter
    from derive.render.view import display_for

    for loss, entry in (("bce", "(ŷ₁ − y₁)/(ŷ₁·(1 − ŷ₁))"), ("sse", "2·(ŷ₁ − y₁)"), ("half_sse", "ŷ₁ − y₁")):
        d = derive(spec_from_flags(2, "1:sigmoid", loss=loss))
        printer = TextPrinter(display_for(d))
        shown = [s for s in d.loss_gradient.steps if s.explicit][-1].rhs
        assert printer.doprint(shown[0, 0]) == entry, loss


def test_fusions_are_named():
    ce = derive(spec_from_flags(2, "3:softmax", loss="ce"))
    assert ce.delta(1).steps[-1].rule == "softmax + cross-entropy"
    bce = derive(spec_from_flags(2, "2:sigmoid", loss="bce"))
    assert bce.delta(1).steps[-1].rule == "sigmoid + binary cross-entropy"
    assert bce.delta(1).compact.doit() == (bce.blocks["yhat"] - bce.blocks["y"]).doit()


def test_numerator_layout_transposes():
    dv = derive(spec_from_flags(3, "2:relu,1:identity", layout="numerator"))
    w1 = dv.gradient("W1")
    assert dv.explicit["W1"].shape == (3, 2)
    assert w1.steps[-1].rule == "numerator layout"
