"""Each seed's key results, checked as SymPy identities on the JSON of its preset."""

import json

import sympy as sp

from derive.cli import main
from derive.spec import load_preset, preset_names

S = sp.Symbol


def _json(name, capsys):
    assert main(["show", name, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _m(rows):
    return sp.Matrix([[sp.sympify(e) for e in row] for row in rows])


def _grad(data, param):
    return next(g for g in data["gradients"] if g["param"] == param)


def _delta(data, layer):
    return next(d for d in data["deltas"] if d["layer"] == layer)


def _vec(prefix, n):
    return sp.Matrix([S(f"{prefix}_{i}") for i in range(1, n + 1)])


def test_presets_list_one_line_each(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == preset_names()
    assert all(len(line.split(None, 1)) == 2 for line in lines)
    assert len(preset_names()) >= 7


def test_seed_000_two_layer_relu(capsys):
    data = _json("two-layer-relu", capsys)
    jac = next(j for j in data["jacobians"] if j["of"] == "z1" and j["wrt"] == "W1")
    x1, x2 = S("x_1"), S("x_2")
    assert _m(jac["matrix"]) == sp.Matrix([[x1, x2, 0, 0], [0, 0, x1, x2]])
    # ∇_W1 = g xᵀ with g = (W2ᵀ (ŷ − y)) ⊙ relu′(z)
    W2 = sp.Matrix([[S("W2_1_1"), S("W2_1_2")]])
    err = sp.Matrix([S("yhat_1") - S("y_1")])
    relu = sp.Matrix([sp.Heaviside(S("z1_1"), 0), sp.Heaviside(S("z1_2"), 0)])
    g = (W2.T * err).multiply_elementwise(relu)
    assert sp.expand(_m(_grad(data, "W1")["explicit"]) - g * sp.Matrix([x1, x2]).T) == sp.zeros(2, 2)


def test_seed_001_sigmoid_bce_row_vectors(capsys):
    data = _json("sigmoid-4321-bce", capsys)
    assert data["spec"]["convention"] == "row"
    out = _delta(data, 3)
    assert out["steps"][-1]["rule"] == "sigmoid + binary cross-entropy"
    yhat, y = sp.MatrixSymbol("yhat", 1, 1), sp.MatrixSymbol("y", 1, 1)
    assert sp.sympify(out["compact"], locals={"yhat": yhat, "y": y}) == yhat - y  # g^[3z] = a^[3] − y
    assert sp.expand(_m(out["explicit"])[0, 0] - (S("yhat_1") - S("y_1"))) != 0  # explicit is the raw product
    assert sp.cancel(_m(out["explicit"])[0, 0] - (S("yhat_1") - S("y_1"))) == 0  # ... which collapses to a − y
    # g^[lW] = (a^[l−1])ᵀ g^[lz]: W2's gradient is h1ᵀ δ2 (3×2)
    w2 = _m(_grad(data, "W2")["explicit"])
    assert w2.shape == (3, 2)
    d2 = _m(_delta(data, 2)["explicit"])
    assert sp.expand(w2 - _vec("h1", 3) * d2) == sp.zeros(3, 2)


def test_seed_002_numerator_layout(capsys):
    data = _json("relu-sse-numerator", capsys)
    w2, w1 = _grad(data, "W2"), _grad(data, "W1")
    assert w2["shape"] == [4, 2]  # d_z × d_s: the transpose of W2's 2×4
    assert w1["shape"] == [3, 4]  # d_x × d_s(1): three distinct widths show every transpose
    expected = 2 * _vec("h1", 4) * (_vec("yhat", 2) - _vec("y", 2)).T
    assert sp.expand(_m(w2["explicit"]) - expected) == sp.zeros(4, 2)
    assert w2["steps"][-1]["rule"] == "numerator layout"


def test_seed_002_variants_have_the_seeds_activations_and_losses():
    a, b = load_preset("sigmoid-sse-numerator"), load_preset("sigmoid-mean-bce-numerator")
    assert [layer.activation for layer in a.layers] == ["sigmoid", "sigmoid"] and a.loss.kind == "sse"
    assert [layer.activation for layer in b.layers] == ["sigmoid", "sigmoid"] and b.loss.kind == "mean_bce"


def test_seed_000_numbers_are_off_the_kink():
    from derive.derivation import derive

    ex = derive(load_preset("two-layer-relu")).example
    z1 = list(next(q for q in ex.forward if q.name == "z1").exact)
    delta1 = list(next(q for layer in ex.backward for q in layer.quantities if q.name == "delta1").exact)
    # off the kink, one gate closed as the preset's comment says: nothing passes back through that unit
    assert ex.kinks == () and all(z != 0 for z in z1)
    assert [z < 0 for z in z1] == [True, False] and delta1[0] == 0 and delta1[1] != 0


def test_seed_003_delta_recursion(capsys):
    data = _json("softmax-ce-three-layer", capsys)
    # ∇_{h_1} = W_2ᵀ ∇_{a_2} and ∇_{a_1} = ∇_{h_1} ⊙ g′(a_1), with ∇_{a_2} the δ of layer 2
    d1, d2 = _m(_delta(data, 1)["explicit"]), _m(_delta(data, 2)["explicit"])
    W2 = sp.Matrix(3, 3, lambda i, j: S(f"W2_{i + 1}_{j + 1}"))
    h1 = _vec("h1", 3)
    gprime = h1.multiply_elementwise(sp.ones(3, 1) - h1)
    assert sp.expand(d1 - (W2.T * d2).multiply_elementwise(gprime)) == sp.zeros(3, 1)
    assert _delta(data, 3)["steps"][-1]["rule"] == "softmax + cross-entropy"


def test_seed_004_class_label_and_worked_numbers(capsys):
    data = _json("relu-softmax-label", capsys)
    assert data["spec"]["loss"]["target"] == "index"
    yhat, y = sp.MatrixSymbol("yhat", 3, 1), sp.MatrixSymbol("y", 3, 1)
    compact = sp.sympify(_delta(data, 3)["compact"], locals={"yhat": yhat, "y": y})
    assert compact == yhat - y  # ∂L/∂o = ô − e_y
    ex = data["example"]
    assert ex["label"] == 3
    assert [r[0] for r in ex["forward"]["h2"]["decimal"]] == [1.0, 2.0]
    assert [r[0] for r in ex["forward"]["z3"]["decimal"]] == [1.0, 3.0, 2.0]
    e = sp.E
    S_ = e + e**2 + e**3
    ohat = sp.Matrix([e / S_, e**3 / S_, e**2 / S_])
    dL_do = ohat - sp.Matrix([0, 0, 1])
    expected = dL_do * sp.Matrix([[1, 2]])  # (∂L/∂o)ᵀ h2ᵀ arranged like W^(o)
    got = _m(ex["gradients"]["W3"]["exact"])
    assert sp.simplify(got - expected) == sp.zeros(3, 2)
    assert ex["agrees"] is True


def test_every_preset_has_a_description_and_notation():
    for name in preset_names():
        spec = load_preset(name)
        assert spec.description and spec.name == name
