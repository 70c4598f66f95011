"""The JSON contract, read back with sympify and checked against the derivation's own claims."""

import json

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings

from derive.cli import main
from derive.derivation import derive
from derive.identities import equal
from derive.render.json import render_json, to_data
from derive.spec import load_preset, spec_from_flags

from .helpers import specs, sweep

NAME_PATTERNS = ("x_", "y_", "yhat_", "W", "b", "z", "h", "delta")


def _matrix(rows):
    return sp.Matrix([[sp.sympify(e) for e in row] for row in rows])


def test_top_level_keys_and_spec_defaults(capsys):
    assert main(["show", "two-layer-relu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"spec", "forward", "jacobians", "gradients"} <= set(data)
    assert data["spec"]["loss"] == {"kind": "half_sse", "target": "vector", "batch": "mean"}
    assert data["spec"]["layer"][0]["bias"] is True
    for jac in data["jacobians"]:
        assert {"of", "wrt", "shape", "structure", "matrix"} <= set(jac)
        assert [len(jac["matrix"]), len(jac["matrix"][0])] == jac["shape"]
    for grad in data["gradients"]:
        assert {"param", "shape", "chain", "explicit", "compact", "steps"} <= set(grad)
        assert all({"rule", "verified"} <= set(s) for s in grad["steps"])


def test_flattened_weight_jacobian_and_heaviside_convention():
    data = to_data(derive(load_preset("two-layer-relu")))
    jac = next(j for j in data["jacobians"] if j["of"] == "z1" and j["wrt"] == "W1")
    assert jac["structure"] == "flattened-weight"
    assert _matrix(jac["matrix"]) == sp.Matrix([[sp.Symbol("x_1"), sp.Symbol("x_2"), 0, 0],
                                                [0, 0, sp.Symbol("x_1"), sp.Symbol("x_2")]])
    w1 = next(g for g in data["gradients"] if g["param"] == "W1")
    text = json.dumps(w1["explicit"])
    assert "Heaviside(z1_1, 0)" in text
    assert "Heaviside(z1_1)" not in text
    # read back and evaluated with unit 1 exactly on its kink, its row of ∂L/∂W1 is 0 (relu′(0) = 0, as autograd)
    grad = sp.Matrix([[sp.sympify(e) for e in row] for row in w1["explicit"]])
    at_kink = grad.subs({sp.Symbol("z1_1"): 0, sp.Symbol("z1_2"): 1})
    assert list(at_kink.row(0)) == [0, 0] and at_kink.row(1).free_symbols


@settings(max_examples=sweep(12, 60))
@given(specs(max_depth=3, max_width=3))
def test_json_reads_back_and_compact_equals_explicit(spec):
    """Every expression sympifies; only component symbols appear in `explicit`; compact forms,
    read back as matrix expressions over the listed blocks, evaluate to the explicit products."""
    d = derive(spec)
    data = json.loads(render_json(d))
    blocks = {name: sp.MatrixSymbol(name, *b["shape"]) for name, b in data["blocks"].items()}
    for grad, chain in zip(data["gradients"], d.gradients):
        explicit = _matrix(grad["explicit"])
        assert explicit.shape == tuple(grad["shape"])
        assert equal(explicit, d.explicit[chain.target])
        for symbol in explicit.free_symbols:
            assert symbol.name.startswith(NAME_PATTERNS) and not symbol.name.startswith("delta"), symbol
        compact = sp.sympify(grad["compact"], locals=blocks)
        assert isinstance(compact, sp.MatrixExpr)
        assert all(step["verified"] for step in grad["steps"])
    for delta, chain in zip(data["deltas"], d.deltas):
        assert equal(_matrix(delta["explicit"]), d.explicit[chain.target])
    for step in (s for g in data["gradients"] for s in g["steps"]):
        assert step["check"]["passed"] and step["check"]["method"] in data["methods"]


def test_compact_read_back_equals_explicit_entry_by_entry():
    d = derive(spec_from_flags(3, "2:tanh,2:sigmoid", loss="bce", convention="row"))
    data = to_data(d)
    blocks = {name: sp.MatrixSymbol(name, *b["shape"]) for name, b in data["blocks"].items()}
    values = {blocks[n]: sp.ImmutableMatrix(_matrix(b["value"])) for n, b in data["blocks"].items() if "value" in b}
    values.update({blocks[n]: d.blocks.values[n] for n in blocks if blocks[n] not in values})
    explicit_deltas = {f"delta{x['layer']}": _matrix(x["explicit"]) for x in data["deltas"]}
    from derive.identities import evaluate

    for grad in data["gradients"]:
        compact = sp.sympify(grad["compact"], locals=blocks)
        env = {**values, **{blocks[k]: sp.ImmutableMatrix(v) for k, v in explicit_deltas.items()}}
        assert equal(evaluate(compact, env), _matrix(grad["explicit"]))


def test_json_is_deterministic():
    spec = load_preset("relu-softmax-label")
    assert render_json(derive(spec)) == render_json(derive(spec))


def test_example_object_has_exact_and_decimal():
    data = to_data(derive(load_preset("relu-softmax-label")))
    ex = data["example"]
    yhat = ex["forward"]["yhat"]
    exact = [float(sp.sympify(r[0])) for r in yhat["exact"]]
    assert np.allclose(exact, [r[0] for r in yhat["decimal"]])
    e = sp.E
    assert sp.simplify(sp.sympify(yhat["exact"][0][0]) - e / (e + e**2 + e**3)) == 0


@pytest.mark.parametrize("name", ["sigmoid-4321-bce", "softmax-ce-three-layer"])
def test_only_builtin_functions_in_expressions(name):
    text = render_json(derive(load_preset(name)))
    data = json.loads(text)
    for jac in data["jacobians"]:
        for row in jac["matrix"]:
            for entry in row:
                expr = sp.sympify(entry)
                assert not any(isinstance(f, sp.core.function.AppliedUndef) for f in expr.atoms(sp.Function))


def test_a_wide_network_writes_its_matrices_elided_at_the_real_widths():
    from derive.derivation import derive_shown

    spec = spec_from_flags(40, "30:tanh,20:identity", loss="half_sse")
    data = json.loads(render_json(derive_shown(spec)))
    jac = next(j for j in data["jacobians"] if j["of"] == "z1" and j["wrt"] == "W1")
    assert jac["shape"] == [30, 1200] and jac["matrix"]["shape"] == [30, 1200]
    assert jac["matrix"]["rows"][-1] == 30 and jac["matrix"]["cols"][-1] == 1200
    assert sp.sympify(jac["matrix"]["entries"][-1][-1]) == sp.Symbol("x_40")  # ∂z_30/∂W_30,40: the real last
    w1 = next(g for g in data["gradients"] if g["param"] == "W1")
    # each entry sums over the 20 outputs, which a small instance does not all hold: left out, not wrong
    assert w1["shape"] == [30, 40] and w1["explicit"]["entries"][0][0] is None
    w2 = next(g for g in data["gradients"] if g["param"] == "W2")
    assert sp.sympify(w2["explicit"]["entries"][-1][-1]) == sp.Symbol("h1_30") * (sp.Symbol("yhat_20") -
                                                                                 sp.Symbol("y_20"))
    lhs = {f["lhs"] for f in data["forward"]}  # the units the matrices show, at their real numbers
    assert "z1_30" in lhs and "yhat_20" in lhs and "z1_5" not in lhs
