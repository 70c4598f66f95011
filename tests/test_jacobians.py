import pytest
import sympy as sp

from derive.blocks import network_blocks
from derive.jacobians import differentiate, local_jacobians
from derive.network import build_network
from derive.spec import spec_from_dict, spec_from_flags

x1, x2 = sp.symbols("x_1 x_2")


def _jac(spec):
    net = build_network(spec)
    return net, local_jacobians(net, network_blocks(net))


def test_flattened_weight_jacobian_row_major_is_the_seed_000_matrix():
    _, jac = _jac(spec_from_flags(2, "2:relu,1:identity"))
    assert jac.weights[1].matrix == sp.Matrix([[x1, x2, 0, 0], [0, 0, x1, x2]])
    assert jac.weights[1].structure == "flattened-weight"


def test_flattened_weight_jacobian_column_major():
    _, jac = _jac(spec_from_flags(2, "2:relu,1:identity", vec="column-major"))
    assert jac.weights[1].matrix == sp.Matrix([[x1, 0, x2, 0], [0, x1, 0, x2]])


@pytest.mark.parametrize("convention", ["column", "row"])
def test_structures_are_found(convention):
    net, jac = _jac(spec_from_flags(3, "2:relu,4:tanh,3:softmax", loss="ce", convention=convention))
    assert jac.loss.structure == "row" and jac.loss.matrix.shape == (1, 3)
    assert jac.activation[1].structure == "diagonal"
    assert jac.activation[3].structure == "softmax"
    assert jac.inputs[2].structure == "dense"
    W2 = net.layers[1].W
    assert jac.inputs[2].matrix == (W2 if convention == "column" else W2.T)
    assert jac.biases[1].structure == "identity" and jac.biases[1].matrix == sp.eye(2)


def test_identity_activation_jacobian_is_identity():
    _, jac = _jac(spec_from_flags(2, "3:identity"))
    assert jac.activation[1].structure == "identity"


def test_sigmoid_diagonal_is_written_in_the_output():
    net, jac = _jac(spec_from_flags(2, "2:sigmoid"))
    h = net.layers[0].h
    assert jac.activation[1].matrix == sp.diag(h[0] * (1 - h[0]), h[1] * (1 - h[1]))


def test_softmax_jacobian_equals_differentiated_matrix():
    net, jac = _jac(spec_from_flags(2, "3:softmax", loss="ce"))
    layer = net.layers[0]
    shown = jac.activation[1].matrix.xreplace(dict(zip(layer.h, layer.h_exprs)))
    raw = differentiate(layer.h_exprs, layer.z)
    assert sp.simplify(shown - raw) == sp.zeros(3, 3)


def test_relu_jacobian_uses_heaviside_zero_at_zero():
    net, jac = _jac(spec_from_dict({"input": 1, "layer": [{"units": 1, "activation": "relu"}]}))
    assert jac.activation[1].matrix[0, 0] == sp.Heaviside(net.layers[0].z[0], 0)
