"""Each spec key changes the network as the README documents it, checked against a forward pass
written here from that documentation alone, in NumPy: not derived by derive, and not torch.

Every other check differentiates the network derive built; if derive read a key wrongly (a leaky
relu's slope ignored, a row-convention W transposed), those checks still agree with themselves.
This one does not: the generated module's loss must equal the documented loss, and its gradients
the documented loss's central differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.render.numpy import numpy_source
from derive.spec import spec_from_dict
from derive.verify import load_module

from .helpers import sweep


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {  # README: identity relu leaky_relu sigmoid tanh softplus softmax
    "identity": lambda z, slope: z,
    "relu": lambda z, slope: np.maximum(z, 0.0),
    "leaky_relu": lambda z, slope: np.where(z > 0, z, slope * z),
    "sigmoid": lambda z, slope: 1.0 / (1.0 + np.exp(-z)),
    "tanh": lambda z, slope: np.tanh(z),
    "softplus": lambda z, slope: np.log1p(np.exp(z)),
    "softmax": lambda z, slope: _softmax(z),
}

LOSSES = {  # DESIGN's loss meanings, K the output width, per example
    "sse": lambda yh, y: ((yh - y) ** 2).sum(-1),
    "half_sse": lambda yh, y: 0.5 * ((yh - y) ** 2).sum(-1),
    "mse": lambda yh, y: ((yh - y) ** 2).mean(-1),
    "bce": lambda yh, y: -(y * np.log(yh) + (1 - y) * np.log(1 - yh)).sum(-1),
    "mean_bce": lambda yh, y: -(y * np.log(yh) + (1 - y) * np.log(1 - yh)).mean(-1),
    "ce": lambda yh, y: -(y * np.log(yh)).sum(-1),
}


def documented_loss(data: dict, params: dict, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of a batch, from the README's meaning of each key."""
    column = data.get("convention", "column") == "column"
    a = x
    for l, layer in enumerate(data["layer"], start=1):
        W = params[f"W{l}"]
        z = a @ W.T if column else a @ W  # column: z = W a + b, W is (out, in); row: z = a W + b, W is (in, out)
        if layer.get("bias", True):
            z = z + params[f"b{l}"]
        a = ACTIVATIONS[layer.get("activation", "identity")](z, layer.get("slope", 0.01))
    loss = data.get("loss", {})
    kind = loss.get("kind", "half_sse")
    if loss.get("target") == "index":  # a class label c: ce = −log ŷ_c
        y = np.eye(a.shape[-1])[y]
    per_example = LOSSES[kind](a, y)
    return float(per_example.mean() if loss.get("batch", "mean") == "mean" else per_example.sum())


@st.composite
def meaningful_specs(draw) -> dict:
    depth = draw(st.integers(1, 3))
    kind = draw(st.sampled_from([*sorted(LOSSES), "ce_index"]))
    layers = [{"units": draw(st.integers(1, 4)), "activation": draw(st.sampled_from(
        ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus"])), "bias": draw(st.booleans())}
        for _ in range(depth - 1)]
    last = {"ce": "softmax", "ce_index": "softmax", "bce": "sigmoid", "mean_bce": "sigmoid"}.get(
        kind, draw(st.sampled_from(["identity", "tanh", "leaky_relu"])))
    layers.append({"units": draw(st.integers(2 if last == "softmax" else 1, 4)), "activation": last,
                   "bias": draw(st.booleans())})
    for layer in layers:
        if layer["activation"] == "leaky_relu":
            layer["slope"] = draw(st.sampled_from([0.01, 0.2, 0.5]))
    return {"input": draw(st.integers(1, 4)), "convention": draw(st.sampled_from(["column", "row"])),
            "layout": draw(st.sampled_from(["gradient", "numerator"])),
            "vec": draw(st.sampled_from(["row-major", "column-major"])), "layer": layers,
            "loss": {"kind": "ce" if kind == "ce_index" else kind,
                     "target": "index" if kind == "ce_index" else "vector",
                     "batch": draw(st.sampled_from(["mean", "sum"]))}}


def _point(data: dict, module, rng):
    params = module.init_params(rng)
    for name in params:
        params[name] = rng.standard_normal(params[name].shape)  # biases too: a zero bias would hide one
    x = rng.standard_normal((3, data["input"]))
    k = data["layer"][-1]["units"]
    loss = data["loss"]
    if loss["target"] == "index":
        y = rng.integers(0, k, 3)
    elif loss["kind"] == "ce":
        y = _softmax(rng.standard_normal((3, k)))
    elif loss["kind"] in ("bce", "mean_bce"):
        y = rng.uniform(0.1, 0.9, (3, k))
    else:
        y = rng.standard_normal((3, k))
    return params, x, y


def check_meaning(data: dict, tmp_path, seed: int = 0) -> None:
    module = load_module(numpy_source(spec_from_dict(data)), "m", tmp_path)
    rng = np.random.default_rng(seed)
    params, x, y = _point(data, module, rng)
    expected = documented_loss(data, params, x, y)
    assert np.isclose(module.loss(params, x, y), expected, rtol=1e-10, atol=1e-12)
    _, grads = module.loss_and_grads(params, x, y)
    for name, value in params.items():  # central differences of the documented loss
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            step = 1e-6
            up, down = {**params, name: value.copy()}, {**params, name: value.copy()}
            up[name][idx] += step
            down[name][idx] -= step
            fd[idx] = (documented_loss(data, up, x, y) - documented_loss(data, down, x, y)) / (2 * step)
        assert np.allclose(grads[name], fd, rtol=1e-5, atol=1e-7), name


@settings(max_examples=sweep(15, 120))
@given(meaningful_specs())
def test_the_module_computes_the_documented_network(tmp_path_factory, data):
    check_meaning(data, tmp_path_factory.mktemp("meaning"))


@pytest.mark.parametrize("key, data", [
    ("slope", {"input": 2, "layer": [{"units": 3, "activation": "leaky_relu", "slope": 0.5}, {"units": 1}]}),
    ("bias = false", {"input": 2, "layer": [{"units": 2, "activation": "tanh", "bias": False}, {"units": 1}]}),
    ("convention = row", {"input": 3, "convention": "row", "layer": [{"units": 2, "activation": "sigmoid"},
                                                                     {"units": 2}]}),
    ("layout = numerator", {"input": 3, "layout": "numerator", "layer": [{"units": 2, "activation": "relu"},
                                                                         {"units": 2}]}),
    ("vec = column-major", {"input": 3, "vec": "column-major", "layer": [{"units": 2, "activation": "relu"},
                                                                         {"units": 2}]}),
    ("loss.batch = sum", {"input": 2, "layer": [{"units": 2}], "loss": {"kind": "mse", "batch": "sum"}}),
    ("loss.target = index", {"input": 2, "layer": [{"units": 3, "activation": "softmax"}],
                             "loss": {"kind": "ce", "target": "index"}}),
    ("defaults", {"input": 2, "layer": [{"units": 2}]}),  # activation identity, loss half_sse, batch mean
])
def test_each_key_means_what_the_readme_says(key, data, tmp_path):
    data = {**data, "loss": {"kind": "half_sse", "target": "vector", "batch": "mean", **data.get("loss", {})}}
    check_meaning(data, tmp_path)


def test_weights_are_initialised_with_variance_one_over_fan_in(tmp_path):
    data = {"input": 400, "layer": [{"units": 300, "activation": "relu"}, {"units": 2}]}
    module = load_module(numpy_source(spec_from_dict(data)), "m", tmp_path)
    params = module.init_params(0)
    assert np.isclose(params["W1"].var(), 1 / 400, rtol=0.02)  # 120 000 draws: within 2 %
    assert np.isclose(params["W2"].var(), 1 / 300, rtol=0.2)   # 600 draws
    assert not params["b1"].any() and not params["b2"].any()
    row = spec_from_dict({**data, "convention": "row"})
    params = load_module(numpy_source(row), "r", tmp_path).init_params(0)
    assert params["W1"].shape == (400, 300) and np.isclose(params["W1"].var(), 1 / 400, rtol=0.02)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "Max(z, z/4)", "Abs(z)"])
@pytest.mark.parametrize("units", [2, 6])  # 2: the straight-line code for small networks; 6: the array code
def test_generated_code_at_a_kink_takes_the_derivations_value(activation, units, tmp_path):
    """x = 0 and b = 0 put every first-layer pre-activation exactly on the kink. The single-example
    code and the batch code must both give what the derivation gives there (relu′(0) = 0, as
    Heaviside(0, 0): SymPy evaluates the derivation's explicit gradients at the same numbers)."""
    import sympy as sp

    from derive.derivation import derive

    data = {"input": 2, "layer": [{"units": units, "activation": activation}, {"units": 1}],
            "loss": {"kind": "half_sse"}}
    spec = spec_from_dict(data)
    module = load_module(numpy_source(spec), "k", tmp_path)
    rng = np.random.default_rng(3)
    params = {"W1": rng.integers(-3, 4, (units, 2)).astype(float), "b1": np.zeros(units),
              "W2": rng.integers(-3, 4, (1, units)).astype(float), "b2": np.array([0.5])}
    x, y = np.zeros(2), np.array([1.5])
    d = derive(spec)
    net = d.network
    exact = lambda a: [sp.Rational(str(v)) for v in np.ravel(a)]  # noqa: E731
    values = {**dict(zip(net.x, exact(x))), **dict(zip(net.y, exact(y)))}
    for layer in net.layers:
        values.update(dict(zip(layer.W, exact(params[f"W{layer.index}"]))))
        values.update(dict(zip(layer.b, exact(params[f"b{layer.index}"]))))
        values.update({z: e.xreplace(values) for z, e in zip(layer.z, layer.z_exprs)})
        values.update({h: e.xreplace(values) for h, e in zip(layer.h, layer.h_exprs)})
    assert all(values[z] == 0 for z in net.layers[0].z)  # exactly on the kink
    for batch in (False, True):
        _, grads = module.loss_and_grads(params, x[None] if batch else x, y[None] if batch else y)
        for name in params:
            at_kink = d.explicit[name].xreplace(values).doit()
            expected = np.array(at_kink.evalf(), dtype=float).reshape(params[name].shape)
            assert np.array_equal(grads[name], expected), (name, batch, grads[name], expected)
