"""Properties of whole derivations, on every preset and on hundreds of random specs.

Two independent oracles for the explicit gradients: SymPy's own `diff` of the fully composed scalar
loss (small networks), and PyTorch autograd in float64 (every network, when torch is installed).
"""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings

from derive.derivation import derive
from derive.spec import load_preset, preset_names, spec_from_flags
from derive.verify import torch_available, torch_loss_and_grads

from .helpers import derive_cached, numeric, random_point, specs, sweep


def composed_loss(net) -> sp.Expr:
    """L as one expression in x, W, b, y: what a naive route differentiates."""
    loss = net.loss_expr
    for layer in reversed(net.layers):
        loss = loss.xreplace(dict(zip(layer.h, layer.h_exprs))).xreplace(dict(zip(layer.z, layer.z_exprs)))
    return loss


def in_parameter_shape(d, chain) -> sp.Matrix:
    """The explicit gradient arranged like the parameter, whatever the layout."""
    explicit = d.explicit[chain.target]
    m = explicit.T if d.spec.layout == "numerator" else explicit
    return m if chain.target.startswith("W") else m.reshape(m.rows * m.cols, 1)


def check_against_sympy_diff(d, values):
    net = d.network
    loss = composed_loss(net)
    for chain in d.gradients:
        layer = net.layers[int(chain.target[1:]) - 1]
        params = layer.W if chain.target.startswith("W") else sp.Matrix(layer.b)
        independent = numeric(params.applyfunc(lambda p: sp.diff(loss, p)), values)
        assert np.allclose(numeric(in_parameter_shape(d, chain), values), independent, rtol=1e-8, atol=1e-10), \
            chain.target


def check_against_torch(d, values):
    net = d.network
    params = {}
    for layer in net.layers:
        params[f"W{layer.index}"] = numeric(layer.W, values)
        if layer.b is not None:
            params[f"b{layer.index}"] = numeric(sp.Matrix(layer.b), values).reshape(-1)
    x = np.array([values[s] for s in net.x])
    y_vec = np.array([values[s] for s in net.y])
    y = int(np.argmax(y_vec)) if d.spec.loss.target == "index" else y_vec
    _, grads = torch_loss_and_grads(d.spec, params, x, y)
    for chain in d.gradients:
        mine = numeric(in_parameter_shape(d, chain), values)
        assert np.allclose(mine.reshape(grads[chain.target].shape), grads[chain.target], rtol=1e-7, atol=1e-9), \
            chain.target


def check(d, seed=0):
    assert d.verified, [(c.target, [(s.rule, s.verified) for s in c.steps]) for c in d.chains]
    values = random_point(d.network, np.random.default_rng(seed))
    n_params = sum(len(layer.W) + len(layer.b or ()) for layer in d.network.layers)
    if n_params <= 24 and d.network.depth <= 3:  # SymPy's diff of the composed loss grows fast beyond
        check_against_sympy_diff(d, values)
    if torch_available():
        check_against_torch(d, values)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_verified_and_correct(name):
    check(derive(load_preset(name)))


@settings(max_examples=sweep(10, 150))
@given(specs())
def test_random_specs_are_verified_and_correct(spec):
    check(derive_cached(spec))


def test_abs_in_user_activations_is_verified_and_correct():
    """|u|′ = sign(u) for real u. The reference differentiates the composed loss over real symbols:
    over SymPy's default (complex) symbols it would be written in re, im and unevaluated Derivatives."""
    d = derive(spec_from_flags(2, "3:z/(1 + Abs(z)),2:Abs(z) - 1,1:identity", loss="half_sse"))
    assert d.verified
    values = random_point(d.network, np.random.default_rng(1))
    loss = composed_loss(d.network)
    real = {s: sp.Symbol(s.name, real=True) for s in loss.free_symbols}
    at = {real.get(s, s): v for s, v in values.items()}
    for chain in d.gradients:
        layer = d.network.layers[int(chain.target[1:]) - 1]
        params = layer.W if chain.target.startswith("W") else sp.Matrix(layer.b)
        reference = numeric(params.applyfunc(lambda p: sp.diff(loss.xreplace(real), real[p])), at)
        assert np.allclose(numeric(in_parameter_shape(d, chain), values), reference, rtol=1e-8, atol=1e-10)
    if torch_available():
        check_against_torch(d, values)


def test_derivatives_read_off_both_output_and_input_are_verified_and_correct():
    """exp(−z²)′ = −2zh and (z eᶻ)′ = h + eᶻ: each σ′ block holds h and z of its own layer, and the
    gradients still equal SymPy's derivative of the composed loss."""
    d = derive(spec_from_flags(2, "3:exp(-z**2),2:z*exp(z),1:identity", loss="half_sse"))
    for layer in d.network.layers[:2]:
        entries = d.blocks.values[f"dact{layer.index}"]
        assert all(e.free_symbols == {h, z} for e, h, z in zip(entries, layer.h, layer.z))
    check(d, seed=2)


def test_derivation_is_deterministic():
    spec = load_preset("softmax-ce-three-layer")
    a, b = derive(spec), derive(spec)
    assert a.explicit == b.explicit
