import numpy as np
import sympy as sp

from derive.network import build_network
from derive.spec import spec_from_flags


def _numbers(net, rng):
    values = {s: rng.standard_normal() for s in net.x}
    for layer in net.layers:
        values.update({w: rng.standard_normal() for w in layer.W})
        values.update({b: rng.standard_normal() for b in (layer.b or ())})
    return values


def test_column_convention_is_W_a_plus_b():
    net = build_network(spec_from_flags(3, "2:identity"))
    layer = net.layers[0]
    assert layer.W.shape == (2, 3)
    values = _numbers(net, np.random.default_rng(0))
    W = np.array(layer.W.xreplace(values), dtype=float)
    x = np.array([values[s] for s in net.x])
    b = np.array([values[s] for s in layer.b])
    z = np.array([float(e.xreplace(values)) for e in layer.z_exprs])
    assert np.allclose(z, W @ x + b)


def test_row_convention_is_a_W_plus_b():
    net = build_network(spec_from_flags(3, "2:identity", convention="row"))
    layer = net.layers[0]
    assert layer.W.shape == (3, 2)
    values = _numbers(net, np.random.default_rng(1))
    W = np.array(layer.W.xreplace(values), dtype=float)
    x = np.array([values[s] for s in net.x])
    z = np.array([float(e.xreplace(values)) for e in layer.z_exprs])
    assert np.allclose(z, x @ W + np.array([values[s] for s in layer.b]))


def test_symbols_are_named_as_the_json_contract_says():
    net = build_network(spec_from_flags(2, "3:relu,2:softmax", loss="ce", no_bias=True))
    assert [s.name for s in net.x] == ["x_1", "x_2"]
    assert net.layers[0].W[2, 1].name == "W1_3_2"
    assert [s.name for s in net.layers[0].h] == ["h1_1", "h1_2", "h1_3"]
    assert [s.name for s in net.yhat] == ["yhat_1", "yhat_2"]
    assert net.layers[0].b is None
    # each layer's equations mention only the previous layer's symbols: no growth with depth
    assert net.layers[1].z_exprs[0].free_symbols <= set(net.layers[0].h) | set(net.layers[1].W)


def test_softmax_outputs_sum_to_one():
    net = build_network(spec_from_flags(2, "3:softmax", loss="ce"))
    assert sp.simplify(sum(net.layers[0].h_exprs) - 1) == 0
