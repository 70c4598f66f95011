"""Generated NumPy modules: correct against finite differences and PyTorch, stable, readable, lean."""

import ast
import dataclasses
import functools
import itertools
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.derivation import derive
from derive.render.numpy import (
    Code,
    numpy_source,
    render_numpy,
    with_out,
    wrapped_chain,
    wrapped_items,
    wrapped_names,
    wrapped_statement,
)
from derive.spec import load_preset, preset_names, spec_from_dict, spec_from_flags
from derive.verify import (
    ATOL,
    RTOL,
    check_module,
    finite_differences,
    load_module,
    sample_point,
    torch_available,
    torch_loss_and_grads,
)

from .helpers import derive_cached, specs, sweep


def module_for(spec, derivation=None):
    return load_module(render_numpy(derivation or derive(spec)), spec.name.replace("-", "_"))


@pytest.mark.parametrize("name", preset_names())
def test_presets_agree_with_finite_differences_and_torch(name):
    spec = load_preset(name)
    report = check_module(module_for(spec), spec, seed=1)
    assert report.ok, report.table()
    assert any(r.reference.startswith("torch") for r in report.rows) == torch_available()


@settings(max_examples=sweep(12, 150))
@given(specs())
def test_random_specs_generate_correct_code(spec):
    module = module_for(spec, derive_cached(spec))
    rng = np.random.default_rng(7)
    for batch in (None, 4):
        params, x, y = sample_point(module, spec, rng, batch=batch)
        before = [{k: v.copy() for k, v in params.items()}, np.copy(x), np.copy(y)]
        value, grads = module.loss_and_grads(params, x, y)
        # the code updates arrays in place, but only its own: the caller's are untouched
        assert all(np.array_equal(params[k], before[0][k]) for k in params)
        assert np.array_equal(x, before[1]) and np.array_equal(y, before[2])
        assert set(grads) == set(params) == set(module.PARAM_SHAPES)
        for name, g in grads.items():
            assert g.shape == params[name].shape == module.PARAM_SHAPES[name]
            assert g.dtype == np.float64
        fd = finite_differences(module, params, x, y)
        for name in grads:
            assert np.allclose(grads[name], fd[name], rtol=RTOL, atol=ATOL), name
        assert np.isclose(value, module.loss(params, x, y))
        if torch_available():
            t_value, t_grads = torch_loss_and_grads(spec, params, x, y)
            assert np.isclose(value, t_value, rtol=1e-9, atol=1e-12)
            for name in grads:
                assert np.allclose(grads[name], t_grads[name], rtol=1e-9, atol=1e-12), name
    # float32 in, float32 out, close to the float64 result
    params, x, y = sample_point(module, spec, rng, batch=3)
    _, g64 = module.loss_and_grads(params, x, y)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    y32 = y.astype(np.float32) if isinstance(y, np.ndarray) and y.dtype.kind == "f" else y
    _, g32 = module.loss_and_grads(p32, x.astype(np.float32), y32)
    for name in g32:
        assert g32[name].dtype == np.float32, name
        assert np.allclose(g32[name], g64[name], rtol=2e-3, atol=2e-4), name


def test_single_example_equals_batch_of_one():
    spec = load_preset("relu-softmax-label")
    module = module_for(spec)
    params, x, y = sample_point(module, spec, np.random.default_rng(3), batch=None)
    v1, g1 = module.loss_and_grads(params, x, y)
    v2, g2 = module.loss_and_grads(params, x[None, :], np.array([y]))
    assert np.isclose(v1, v2) and all(np.allclose(g1[k], g2[k]) for k in g1)
    assert module.forward(params, x)["yhat"].shape == (3,)


def test_mean_is_sum_over_batch_size():
    base = {"input": 3, "layer": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
            "loss": {"kind": "bce"}}
    mean = module_for(spec_from_dict(base))
    total = module_for(spec_from_dict({**base, "loss": {"kind": "bce", "batch": "sum"}}))
    params, x, y = sample_point(mean, spec_from_dict(base), np.random.default_rng(0), batch=5)
    vm, gm = mean.loss_and_grads(params, x, y)
    vs, gs = total.loss_and_grads(params, x, y)
    assert np.isclose(vs, 5 * vm) and all(np.allclose(gs[k], 5 * gm[k]) for k in gm)


def _label_modules():
    """A net small enough for straight-line code for one example, and one that is not."""
    small = module_for(load_preset("relu-softmax-label"))
    wide = module_for(spec_from_flags(5, "7:relu,4:softmax", loss="ce", target="index"))
    assert hasattr(small, "_single") and not hasattr(wide, "_single")
    return {"straight-line": small, "arrays": wide}


LABEL_MODULES = _label_modules()


@pytest.mark.parametrize("path", LABEL_MODULES)
@pytest.mark.parametrize("y", [1.5, True, "1", -1, "width", [0, 1], np.array([2**64 - 1], dtype=np.uint64)])
@pytest.mark.parametrize("batch", [False, True])
def test_bad_class_labels_are_refused_on_every_path(path, y, batch):
    module = LABEL_MODULES[path]
    y = module.OUTPUT_WIDTH if y == "width" else y
    x = np.ones((1, module.INPUT_WIDTH) if batch else module.INPUT_WIDTH)
    with pytest.raises(ValueError, match="label"):
        module.loss_and_grads(module.init_params(0), x, y)


@pytest.mark.parametrize("path", LABEL_MODULES)
def test_one_label_may_be_given_as_any_integer_or_one_element_array(path):
    module = LABEL_MODULES[path]
    params, c = module.init_params(1), module.OUTPUT_WIDTH - 1
    x = np.linspace(-1, 1, module.INPUT_WIDTH)
    runs = [module.loss_and_grads(params, xs, y) for xs in (x, x[None, :])
            for y in (c, np.int64(c), np.uint8(c), np.array([c]), np.array(c), np.array([[c]], dtype=np.uint16))]
    for value, grads in runs[1:]:
        assert value == runs[0][0] and all(np.array_equal(grads[k], runs[0][1][k]) for k in grads)


@pytest.mark.parametrize("path", LABEL_MODULES)
@pytest.mark.parametrize("x_shape", [(None,), (1, None), (3, None)])
def test_a_parameter_of_the_wrong_shape_is_named_on_every_path(path, x_shape):
    """A transposed W has the right number of entries: straight-line code must not read it in the wrong order."""
    module = LABEL_MODULES[path]
    params = module.init_params(0)
    x = np.ones(tuple(module.INPUT_WIDTH if n is None else n for n in x_shape))
    y = np.zeros(x.shape[0] if x.ndim == 2 else (), dtype=int)
    wrong = {**params, "W1": params["W1"].T}
    for call in (lambda p: module.loss_and_grads(p, x, y), lambda p: module.loss(p, x, y),
                 lambda p: module.forward(p, x)):
        with pytest.raises(ValueError, match=re.escape(f"params['W1'] must have shape {params['W1'].shape}, got")):
            call(wrong)
    # nested lists of the right shapes are read as arrays
    lists = {name: value.tolist() for name, value in params.items()}
    value, grads = module.loss_and_grads(lists, x, y)
    expected = module.loss_and_grads(params, x, y)
    assert value == expected[0] and all(np.array_equal(grads[k], expected[1][k]) for k in grads)


class ArrayLike:
    """An array from another library, as a torch tensor is: a shape, and __array__ for NumPy."""

    def __init__(self, value: np.ndarray) -> None:
        self.value, self.shape = value, value.shape

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)


class Subclass(np.ndarray):
    pass


@pytest.mark.parametrize("path", LABEL_MODULES)
@pytest.mark.parametrize("batch", [False, True])
def test_params_must_be_exactly_the_networks_parameters(path, batch):
    """A missing or unknown key is named (the gradients could not have the keys of params), and
    arrays of other types are read as NumPy arrays rather than failing inside a matmul."""
    module = LABEL_MODULES[path]
    params = module.init_params(0)
    x = np.ones((2, module.INPUT_WIDTH) if batch else module.INPUT_WIDTH)
    y = np.zeros(2 if batch else (), dtype=int)
    bad = [({k: v for k, v in params.items() if k != "W2"}, "params lacks 'W2'; this network's parameters are W1, "),
           ({**params, "W9": params["W1"]}, "params has 'W9'; "), ({**params, 3: 1}, "params has 3; "),
           (list(params.values()), "params must be a dict of arrays, got list"), (None, "must be a dict")]
    rows, columns = params["W1"].shape
    ragged = [[0.5] * columns] * (rows - 1) + [[0.5] * (columns + 1)]
    bad += [({**params, "W1": ragged}, f"params['W1'] must be an array of numbers of shape {(rows, columns)}: "),
            ({**params, "W1": [["0.5"] * columns] * rows}, "params['W1'] must be an array of numbers, got dtype <U3"),
            ({**params, "W1": [[None] * columns] * rows}, "params['W1'] must be an array of numbers of shape ")]
    for wrong, message in bad:
        for call in (lambda p: module.loss_and_grads(p, x, y), lambda p: module.forward(p, x)):
            with pytest.raises(ValueError, match=re.escape(message)):
                call(wrong)
    expected = module.loss_and_grads(params, x, y)
    # numbers of another type, in nested lists: Fraction(v) is exactly v
    fractions = {**params, "W1": [[Fraction(v) for v in row] for row in params["W1"].tolist()]}
    for other in ({k: ArrayLike(v) for k, v in params.items()}, {**params, "W1": params["W1"].view(Subclass)},
                  fractions):
        value, grads = module.loss_and_grads(other, x, y)
        assert value == expected[0] and {type(g) for g in grads.values()} == {np.ndarray}
        assert {g.dtype for g in grads.values()} == {np.dtype(np.float64)}
        assert all(np.array_equal(grads[k], expected[1][k]) for k in grads)


@pytest.mark.parametrize("path", LABEL_MODULES)
@pytest.mark.parametrize(("params_dtype", "x_dtype", "expected"), [
    (np.float32, np.float32, np.float32), (np.float64, np.float32, np.float64), (np.float32, np.float64, np.float64),
    (np.float32, np.int64, np.float64), (np.float32, np.float16, np.float32)])
def test_gradients_take_the_promoted_dtype_on_every_path(path, params_dtype, x_dtype, expected):
    """One example, a batch of one and a batch (straight-line code or arrays) agree on the dtype."""
    module = LABEL_MODULES[path]
    params = module.init_params(0, dtype=params_dtype)
    for x, y in [(np.ones(module.INPUT_WIDTH), 0), (np.ones((1, module.INPUT_WIDTH)), [0]),
                 (np.ones((3, module.INPUT_WIDTH)), [0, 1, 2])]:
        _, grads = module.loss_and_grads(params, x.astype(x_dtype), np.array(y))
        assert {g.dtype for g in grads.values()} == {np.dtype(expected)}


@pytest.mark.parametrize("spec", [load_preset("softmax-ce-three-layer"),
                                  spec_from_flags(3, "40:tanh,4:softmax", loss="ce")], ids=["straight-line", "arrays"])
def test_cross_entropy_targets_must_sum_to_one(spec):
    """δ = ŷ − y holds because Σ_k y_k = 1: for targets summing to 2 it would be the gradient of
    another loss, so they are refused; rounding in float32 targets is not."""
    module = module_for(spec)
    params, k = module.init_params(0), module.OUTPUT_WIDTH
    x = np.random.default_rng(0).standard_normal((3, module.INPUT_WIDTH))
    for xs, y in [(x[0], np.full(k, 2 / k)), (x[:1], np.full((1, k), 2 / k)), (x, np.full((3, k), 2 / k))]:
        with pytest.raises(ValueError, match="sum to 1"):
            module.loss_and_grads(params, xs, y)
    for xs, y in [(x[0], np.full(k, 1 / k, dtype=np.float32)), (x, np.full((3, k), 1 / k, dtype=np.float32)),
                  (x.astype(np.float32), np.full((3, k), 1 / k)), (x, np.eye(k, dtype=int)[:3])]:
        value, grads = module.loss_and_grads(params, xs, y)
        assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("width", [2, 40])  # straight-line code for one example, then arrays only
def test_bad_shapes_name_the_shape_given(width):
    spec = spec_from_dict({"input": 3, "layer": [{"units": width, "activation": "tanh"},
                                                 {"units": 2, "activation": "sigmoid"}], "loss": {"kind": "bce"}})
    module = module_for(spec)
    params = module.init_params(0)
    for x, y, shape in [(np.ones(4), np.ones(2), "(4,)"), (np.ones((1, 1, 3)), np.ones(2), "(1, 1, 3)"),
                        (np.ones(3), np.ones(3), "(3,)"), (np.ones((1, 3)), np.ones((2, 2)), "(2, 2)"),
                        (np.ones((2, 3)), np.ones(2), "(2,)")]:
        with pytest.raises(ValueError, match=rf"got {re.escape(shape)}$"):
            module.loss_and_grads(params, x, y)
    # a single example's target may be given either way
    assert module.loss_and_grads(params, np.ones(3), np.ones((1, 2)))[0] == module.loss(params, np.ones(3), np.ones(2))


def test_an_empty_batch_has_no_mean_but_sums_to_zero():
    base = {"input": 3, "layer": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
            "loss": {"kind": "bce"}}
    mean = module_for(spec_from_dict(base))
    with pytest.raises(ValueError, match="no examples"):
        mean.loss_and_grads(mean.init_params(0), np.ones((0, 3)), np.ones((0, 2)))
    assert mean.forward(mean.init_params(0), np.ones((0, 3)))["h1"].shape == (0, 4)  # no mean is taken there
    total = module_for(spec_from_dict({**base, "loss": {"kind": "bce", "batch": "sum"}}))
    value, grads = total.loss_and_grads(total.init_params(0), np.ones((0, 3)), np.ones((0, 2)))
    assert value == 0 and all(g.shape == total.PARAM_SHAPES[k] and not g.any() for k, g in grads.items())


def _saturated(spec_dict, logits):
    """A one-layer net whose pre-activations are exactly `logits` (x = 1, W = logits, no bias)."""
    spec = spec_from_dict(spec_dict)
    module = module_for(spec)
    params = {"W1": np.array(logits, dtype=np.float64).reshape(-1, 1)}
    return module, params


def test_softmax_cross_entropy_is_stable_at_40():
    module, params = _saturated({"input": 1, "layer": [{"units": 3, "activation": "softmax", "bias": False}],
                                 "loss": {"kind": "ce", "target": "index"}}, [40.0, -40.0, 0.0])
    value, grads = module.loss_and_grads(params, np.ones((1, 1)), np.array([1]))
    assert np.isfinite(value) and np.isclose(value, 80.0, rtol=1e-12)
    p = np.exp(np.array([40.0, -40.0, 0.0]) - 40.0)
    p /= p.sum()
    expected = (p - np.array([0, 1, 0])).reshape(-1, 1)
    assert np.allclose(grads["W1"], expected, rtol=1e-12, atol=1e-300)


@functools.cache
def _softmax_module(width):
    return module_for(spec_from_flags(1, f"{width}:softmax", loss="ce", target="index"))


@settings(max_examples=sweep(8, 80), deadline=None)
@given(rows=st.sampled_from([1, 3, 31, 32, 64, 300]), width=st.sampled_from([2, 10, 16, 17, 40]),
       scale=st.sampled_from([1.0, 50.0, 700.0]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_softmax_rows_match_log_sum_exp_whichever_way_the_maxima_are_taken(rows, width, scale, dtype, seed):
    """The module's softmax takes the row maxima of 32 or more rows of up to 16 through a transposed
    copy and the row sums as a product with ones: either way each row is exp(z − lse) with lse the row's
    log Σ exp, finite and summing to 1, even where z reaches ±700 (±50 in float32)."""
    module = _softmax_module(width)
    scale = min(scale, 50.0) if dtype == np.float32 else scale
    z = (scale * np.random.default_rng(seed).uniform(-1, 1, size=(rows, width))).astype(dtype)
    p, lse = module._softmax(z.copy())
    assert p.dtype == dtype and lse.shape == (rows, 1)
    expected_lse = np.logaddexp.reduce(z.astype(np.float64), axis=1, keepdims=True)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert np.allclose(lse, expected_lse, rtol=tol, atol=tol * scale)
    assert np.allclose(p, np.exp(z.astype(np.float64) - expected_lse), rtol=10 * tol, atol=10 * tol)
    assert np.allclose(p.sum(axis=1), 1.0, rtol=10 * tol)


def test_sigmoid_bce_is_stable_at_40():
    module, params = _saturated({"input": 1, "layer": [{"units": 2, "activation": "sigmoid", "bias": False}],
                                 "loss": {"kind": "bce", "batch": "sum"}}, [40.0, -40.0])
    with np.errstate(all="raise"):
        value, grads = module.loss_and_grads(params, np.ones((2, 1)), np.array([[0.0, 1.0], [1.0, 0.0]]))
    # each wrong-way saturated unit costs 40 (+ log(1 + e^-40)); each right-way one almost nothing
    assert np.isfinite(value) and np.isclose(value, 80 + 4 * np.log1p(np.exp(-40.0)), rtol=1e-12)
    s = 1 / (1 + np.exp(-40.0))
    expected = np.array([[(s - 0) + (s - 1)], [(1 - s - 1) + (1 - s - 0)]])
    assert np.allclose(grads["W1"], expected, rtol=1e-12)


@pytest.mark.parametrize(("dtype", "big"), [(np.float64, 800.0), (np.float32, 100.0)])
@pytest.mark.parametrize("activation", ["z/(1 + exp(-z))",  # swish
                                        "Piecewise((z, z > 0), (exp(z) - 1, True))",  # ELU
                                        "Piecewise((1 - exp(-z), z > 0), (z, True))"])  # its mirror image
def test_user_activations_are_stable_where_exp_overflows(dtype, big, activation):
    """Printed as written, these overflow once e^(±z) does (|z| > 709 in float64, > 88 in float32):
    swish and its derivative to inf/inf = nan; an exponential piece of a Piecewise with a warning,
    since np.where evaluates every piece at every entry, also where another piece is taken. Swish is
    printed as one exponential, and each exponential piece is clamped to its own interval, so nothing
    overflows and the values are exact."""
    spec = spec_from_flags(1, f"1:{activation}", loss="half_sse", no_bias=True)
    module = module_for(spec)
    if activation.startswith("Piecewise"):
        source = numpy_source(spec)
        assert "np.minimum(z1, 0)" in source or "np.maximum(z1, 0)" in source
    # two equal rows: the array code, in the dtype given (one row takes the straight-line code)
    x, y = np.ones((2, 1), dtype=dtype), np.full((2, 1), 3.0, dtype=dtype)
    z = sp.Symbol("z")
    act = sp.sympify(activation, locals={"z": z})
    exact = (act - 3) * sp.diff(act, z)  # dL/dW at x = 1
    tiny = np.finfo(dtype).tiny  # where the exact value is subnormal, digits are lost anyway
    for w in (-big, big):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, grads = module.loss_and_grads({"W1": np.full((1, 1), w, dtype=dtype)}, x, y)
        assert grads["W1"].dtype == dtype
        assert np.isclose(grads["W1"][0, 0], float(exact.subs(z, w).evalf(30)), rtol=1e-5, atol=tiny)
        if activation.startswith("Piecewise"):
            assert np.isclose(value, float(((act - 3) ** 2 / 2).subs(z, w)), rtol=1e-5)


def test_irrational_constants_print_as_one_float_in_front():
    spec = spec_from_flags(2, "3:z*exp(-1) + log(2) + 1,1:identity", loss="half_sse")
    source = numpy_source(spec)
    coefficient, constant = repr(float(sp.exp(-1))), repr(float(sp.log(2) + 1))
    assert f"{coefficient}*z1 + {constant}" in source and "*0.3678" not in source
    assert check_module(load_module(source, "constants"), spec).ok


def test_abs_in_a_user_activation_gives_correct_code():
    spec = spec_from_flags(2, "3:z/(1 + Abs(z)),2:Abs(z) - 1,1:identity", loss="half_sse")
    src = numpy_source(spec)
    assert "np.sign(" in src and "re(" not in src
    report = check_module(load_module(src, "softsign"), spec, seed=2, points=2)
    assert report.ok, report.table()


@pytest.mark.parametrize("widths", [f"{n}:Max(z, z/4),{n}:Max(0, 1 - z),1:identity" for n in (2, 6)])
def test_steps_are_comparisons_in_code_and_correct(widths):
    """1[z < 0] and 1[z < 1] as comparisons of the stored array (or float), not np.heaviside of a
    scaled copy; on both the straight-line and the array path."""
    spec = spec_from_flags(3, widths, loss="half_sse")
    src = numpy_source(spec)
    assert "heaviside" not in src
    assert "(z1 < 0).astype(z1.dtype)" in src and "(z2 < 1).astype(z2.dtype)" in src
    report = check_module(load_module(src, "steps"), spec, seed=3, points=2)
    assert report.ok, report.table()


def test_products_with_small_weights_use_np_dot_and_with_large_ones_the_operator():
    """np.dot saves a microsecond of dispatch a call; @ is the faster BLAS path on large operands."""
    src = numpy_source(spec_from_flags(784, "256:relu,10:softmax", loss="ce", target="index"))
    code = [line.strip() for line in src[src.index("def loss_and_grads"):].splitlines()]
    assert {"z1 = x @ W1.T", "dW1 = delta1.T @ x"} <= set(code)  # W1 has 200 704 entries
    assert {"z2 = np.dot(h1, W2.T)", "dW2 = np.dot(delta2.T, h1)"} <= set(code)  # W2 has 2 560
    assert "delta1 = np.matmul(delta2, W2, out=h1)  # into h1's memory: h1 is not read again" in code


def test_out_is_given_only_to_one_whole_ufunc_call():
    assert with_out("np.maximum(z1, 0)", "z1") == "np.maximum(z1, 0, out=z1)"
    assert with_out("np.exp(-np.logaddexp(0, -z1))", "z1") == "np.exp(-np.logaddexp(0, -z1), out=z1)"
    assert with_out("np.exp(z1) + np.exp(-z1)", "z1") is None  # the first call ends before the code does
    assert with_out("np.where(z1 > 0, z1, 0)", "z1") is None  # not a ufunc: no out=
    assert with_out("np.frexp(z1)", "z1") is None  # two outputs
    assert with_out("z1/(1 + np.exp(-z1))", "z1") is None
    assert with_out("(z1 > 0).astype(z1.dtype)", "z1") is None


def test_an_operand_is_parenthesized_unless_it_is_already_one_whole():
    """Checked by evaluating: the text put between `2 *` and `.T` must keep its meaning."""
    texts = ["a", "a.T", "np.dot(a, b)", "(a - b)", "a[:, 0]", "a - b", "-a", "(a - b) * c + d", "(a) * (b)",
             "np.dot(a, b) - c", "a[:, 0] + b"]
    scope = {"np": np, "a": np.arange(4.0).reshape(2, 2), "b": np.eye(2), "c": 3.0, "d": np.ones((2, 2))}
    for text in texts:
        operand = Code(text, "ex", (1, 1)).wrapped()
        whole = eval(text, scope)
        assert np.array_equal(eval(f"2 * {operand}", scope), 2 * whole), text
        assert np.array_equal(eval(f"c - {operand}", scope), 3.0 - whole), text
    assert Code("np.dot(a, b)", "ex", (1, 1)).wrapped() == "np.dot(a, b)"  # no needless parentheses
    assert Code("a[:, 0]", "ex", (1, 1)).wrapped() == "a[:, 0]"


def test_an_activation_without_out_hands_its_argument_back():
    """ELU's np.where cannot write into z⁽¹⁾; z⁽¹⁾ is deleted instead, and the gradients are right."""
    spec = spec_from_flags(3, "4:Piecewise((z, z > 0), (exp(z) - 1, True)),2:identity", loss="half_sse")
    src = render_numpy(derive(spec))
    train = src[src.index("def loss_and_grads"):]
    assert "    h1 = np.where(" in train and "    del z1  # not read again\n" in train
    report = check_module(load_module(src, "elu"), spec, seed=4, points=2)
    assert report.ok, report.table()


def test_code_reads_like_the_derivation():
    src = render_numpy(derive(load_preset("two-layer-relu")))
    tree = ast.parse(src)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [a.name for n in imports for a in n.names] == ["numpy"]
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert {"init_params", "forward", "loss", "loss_and_grads"} <= set(functions)
    for name in ("_forward", "loss_and_grads"):
        assert not any(isinstance(n, ast.For | ast.While) for n in ast.walk(functions[name]))
    assert "    # z⁽¹⁾ = W⁽¹⁾ x + b⁽¹⁾\n    z1 = np.dot(x, W1.T)\n    z1 += b1\n" in src  # one array, not two
    assert "    # relu′(z⁽¹⁾) = 1[z⁽¹⁾ > 0], entry by entry\n    dact1 = z1 > 0\n" in src  # a mask, not a copy
    train = ast.get_source_segment(src, functions["loss_and_grads"])
    # In loss_and_grads the mask is taken as soon as z⁽¹⁾ exists, so that h⁽¹⁾ can overwrite z⁽¹⁾ ...
    # (and as relu(u) = u·relu′(u), h⁽¹⁾ is z⁽¹⁾ times that mask: one multiply, not np.maximum)
    assert ("    dact1 = z1 > 0\n    # h⁽¹⁾ = z⁽¹⁾ ⊙ relu′(z⁽¹⁾), entry by entry, as relu(u) = u·relu′(u)\n"
            "    h1 = np.multiply(z1, dact1, out=z1)  # into z1's memory: z1 is not read again\n") in train
    # ... and once ∂L/∂W⁽²⁾ has read h⁽¹⁾, δ⁽¹⁾ takes that memory in turn.
    assert train.index("dW2 = np.dot(delta2.T, h1)") < train.index("delta1 = np.matmul(delta2, W2, out=h1)")
    assert ("    # δ⁽¹⁾ = (W⁽²⁾ᵀ δ⁽²⁾) ⊙ relu′(z⁽¹⁾)\n    delta1 = np.matmul(delta2, W2, out=h1)"
            "  # into h1's memory: h1 is not read again\n    delta1 *= dact1\n") in train
    assert "dW1 = np.dot(delta1.T, x)" in src  # the outer products of a batch: one matmul
    # forward() still returns z⁽¹⁾ and h⁽¹⁾ as two arrays
    assert "out=" not in ast.get_source_segment(src, functions["_forward"])


@pytest.mark.parametrize(("activation", "rewritten"), [
    ("relu", True), ("leaky_relu", True), ("Max(z, z/5)", True), ("Piecewise((z, z > 0), (3*z, True))", True),
    ("Min(0, z)", True), ("Piecewise((z, z > 1), (0, True))", True),  # z·1[z > 1]: a jump, but still z·σ′
    ("Abs(z)", True), ("z + 2*Abs(z)", True),  # u·sign(u) = |u|
    # a kink away from 0, an exponential piece, smooth functions: σ(u) ≠ u·σ′(u)
    ("Max(0, z - 1)", False), ("Abs(z - 1)", False), ("Piecewise((z, z > 0), (exp(z) - 1, True))", False),
    ("sigmoid", False), ("softplus", False),
])
def test_an_activation_through_0_on_each_side_is_z_times_its_derivative(activation, rewritten):
    """In loss_and_grads, h = z ⊙ σ′(z), reusing the σ′ kept for the backward pass, exactly where SymPy
    confirms σ(u) = u·σ′(u); forward() still evaluates σ itself; the gradients check either way."""
    spec = spec_from_flags(3, f"4:{activation},2:identity", loss="half_sse")
    src = render_numpy(derive(spec))
    train = src[src.index("def loss_and_grads"):]
    assert ("h1 = np.multiply(z1, dact1, out=z1)" in train) is rewritten
    assert "np.multiply(z1, dact1" not in src[src.index("def _forward"):src.index("def loss_and_grads")]
    module = load_module(src, "through_0")
    rng = np.random.default_rng(5)
    params, x, y = module.init_params(rng), rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert module.loss_and_grads(params, x, y)[0] == pytest.approx(module.loss(params, x, y), rel=1e-12)
    report = check_module(module, spec, seed=5, points=2)
    assert report.ok, report.table()


def test_bias_gradients_sum_over_the_batch_as_one_product():
    """δ summed over the batch is 1ᵀ Δ, a matrix-vector product: one vector of ones, made before the
    first bias gradient in δ's dtype (so float32 stays float32), and none without biases."""
    src = render_numpy(derive(load_preset("softmax-ce-three-layer")))
    train = src[src.index("def loss_and_grads"):]
    assert train.count("ones = np.ones(") == 1
    assert train.index("ones = np.ones(x.shape[0], dtype=delta3.dtype)") < train.index("db3 = np.dot(ones, delta3)")
    assert "db1 = np.dot(ones, delta1)" in train and ".sum(axis=0)" not in train
    spec = spec_from_flags(40, "3:relu,2:identity", loss="half_sse", no_bias=True)
    assert "ones" not in numpy_source(spec)


def test_an_array_with_two_names_is_freed_by_neither():
    """An identity layer makes h⁽¹⁾ = z⁽¹⁾ one array: δ⁽¹⁾ may overwrite it only after ∂L/∂W⁽²⁾ has
    read h⁽¹⁾, and tanh's h⁽²⁾ overwrites z⁽²⁾, which nothing reads again (tanh′ is read off h⁽²⁾)."""
    spec = spec_from_flags(4, "5:identity,3:tanh,2:sigmoid", loss="bce")
    src = render_numpy(derive(spec))
    train = src[src.index("def loss_and_grads"):]
    assert "h1 = z1\n" in train and "h2 = np.tanh(z2, out=z2)" in train
    assert train.index("dW2 = np.dot(delta2.T, h1)") < train.index("out=h1")
    report = check_module(load_module(src, "alias"), spec, seed=3, points=2)
    assert report.ok, report.table()


def _necessary_bytes(widths, batch, itemsize):
    """What backprop has to hold at once: h of every hidden layer (dW reads it; relu′ needs only a
    mask, so z need not outlive h), the output layer's z, ŷ and one-hot y, a boolean relu′ mask per
    hidden layer, and the gradients."""
    hidden = sum(widths[1:-1])
    params = sum(a * b + b for a, b in itertools.pairwise(widths))
    return itemsize * (batch * hidden + 3 * batch * widths[-1] + params) + batch * hidden


def test_no_needless_temporaries():
    """Peak memory of loss_and_grads (NumPy reports its arrays to tracemalloc) stays within what backprop
    must hold plus one (B, width) array; the plain hand-written backprop needs more."""
    widths, batch = [64, 128, 128, 10], 256
    layers = ",".join(f"{w}:relu" for w in widths[1:-1]) + f",{widths[-1]}:softmax"
    spec = spec_from_flags(widths[0], layers, loss="ce", target="index")
    module = load_module(numpy_source(spec), "lean")
    params = module.init_params(0)
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((batch, widths[0])), rng.integers(0, widths[-1], batch)
    bound = _necessary_bytes(widths, batch, 8) + 8 * batch * max(widths)
    assert _peak_bytes(lambda: module.loss_and_grads(params, x, labels)) <= bound
    assert _peak_bytes(lambda: _plain_backprop(params, x, labels)) > bound  # the bound is tight enough to tell


def _peak_bytes(run) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _plain_backprop(params, x, labels):
    """Backprop as usually written by hand, one new array per operation."""
    n = len(params) // 2
    acts, pre = [x], []
    for layer in range(1, n + 1):
        pre.append(acts[-1] @ params[f"W{layer}"].T + params[f"b{layer}"])
        acts.append(np.maximum(pre[-1], 0))
    e = np.exp(pre[-1] - pre[-1].max(axis=1, keepdims=True))
    delta = e / e.sum(axis=1, keepdims=True)
    delta[np.arange(len(labels)), labels] -= 1
    delta = delta / len(labels)
    grads = {}
    for layer in range(n, 0, -1):
        grads[f"W{layer}"], grads[f"b{layer}"] = delta.T @ acts[layer - 1], delta.sum(axis=0)
        if layer > 1:
            delta = (delta @ params[f"W{layer}"]) * (pre[layer - 2] > 0).astype(x.dtype)
    return grads


def test_generated_code_is_deterministic():
    spec = load_preset("softmax-ce-three-layer")
    assert render_numpy(derive(spec)) == render_numpy(derive(spec))


DEEP = spec_from_flags(4, "30:relu,30:tanh,30:z/(1 + exp(-z)),30:Piecewise((z, z > 0), (exp(z) - 1, True)),3:softmax",
                       loss="ce", target="index", name="a-deep-network-with-a-long-name")


LONG_FORMULA = "z**3/3 + z**2/2 + sin(z)*cos(z) + tanh(z)*exp(-z**2)"  # its derivative prints 130 characters wide
WRAPPED = {"deep": DEEP,
           "long-formula-arrays": spec_from_flags(3, f"8:{LONG_FORMULA},2:softmax", loss="ce"),
           "long-formula-straight-line": spec_from_flags(3, f"4:{LONG_FORMULA},2:softmax", loss="ce"),
           # f′ is (1 − h²) times a long factor: no + or − at the top level to break at
           "long-formula-product": spec_from_flags(3, f"8:tanh({LONG_FORMULA} + cosh(z)),2:softmax", loss="ce")}


@pytest.mark.parametrize("name", [*preset_names(), *WRAPPED])
def test_generated_code_passes_ruff(tmp_path, name):
    """Presets; a deep net whose docstring lines and parameter lists need wrapping; a formula whose
    code and equation comments need wrapping, on both paths (and still give the right gradients)."""
    spec = WRAPPED.get(name) or load_preset(name)
    path = tmp_path / "module.py"
    path.write_text(numpy_source(spec))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E,F,W,B",
                             "--line-length", "120", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    if name.startswith("long"):
        report = check_module(load_module(path.read_text(), name.replace("-", "_")), spec, seed=2, points=2)
        assert report.ok, report.table()


def test_a_title_with_quotes_and_backslashes_stays_text(tmp_path):
    """The spec's title opens the module's docstring: quotes, backslashes and escapes in it must
    not end the string or be read as escapes, and a long one wraps."""
    title = 'A """quoted""" title \\ with \\N{BULLET}, \\n, \'single\' and "double" quotes, σ′ ' + "and more " * 12
    spec = dataclasses.replace(spec_from_flags(2, "2:tanh,1:sigmoid", loss="bce"), title=title)
    path = tmp_path / "titled.py"
    path.write_text(numpy_source(spec))
    module = load_module(path.read_text(), "titled")
    assert " ".join(module.__doc__.split("\n\n")[0].split()) == " ".join(title.split())
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E,F,W,B",
                             "--line-length", "120", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("count", [1, 2, 7, 12, 40])
def test_long_lists_wrap_into_code_that_means_the_same(count):
    """Tuples, assignment targets and `is` chains of any length: valid Python, rows within the width."""
    names = [f"name{k}" for k in range(count)]
    code = (f"values = (\n        {wrapped_items(names)}\n)\n"
            f"same = (\n            {wrapped_chain([*names, 'token'], 'is')}\n)\n"
            f"{wrapped_names(names)} = range({count})\n")
    assert max(map(len, code.splitlines())) <= 100, code
    token = object()
    for odd_one in (None, names[-1]):
        scope = {name: token for name in names} | {"token": token}
        if odd_one:
            scope[odd_one] = object()
        exec(compile(code, "wrapped", "exec"), scope)
        assert scope["same"] is (odd_one is None)
        assert len(scope["values"]) == count
        assert [scope[name] for name in names] == list(range(count))


@pytest.mark.parametrize("width", [40, 60, 80, 100])
def test_long_statements_wrap_into_code_that_means_the_same(width):
    """Broken at top-level + and − first, then inside parentheses and after commas: the rows fit and
    compute the same numbers."""
    code = ("(1 - np.tanh(a + b*c - np.sin(a) + np.cos(b))**2)*(a**2 + a - 2*a*np.exp(-a**2) - np.sin(b)**2)"
            " - np.minimum(a + b, c - a) + np.hypot(b - c, a + b)")
    statement = wrapped_statement("r", code, indent=4, width=width)
    rows = statement.splitlines()
    # the first row follows the 4 columns of indentation the template gives it; the others carry theirs
    assert len(rows) > 1 and all(4 * (k == 0) + len(row) <= width for k, row in enumerate(rows)), statement
    rng = np.random.default_rng(0)
    scope = {"np": np, **{name: rng.standard_normal(5) for name in "abc"}}
    exec(compile(f"expected = {code}\n{statement}", "wrapped", "exec"), scope)
    assert np.array_equal(scope["r"], scope["expected"])


def test_user_activation_needs_no_special_code():
    spec = spec_from_flags(3, "4:z*tanh(log(1 + exp(z))),2:identity", loss="mse")
    src = render_numpy(derive(spec))
    assert "np.tanh" in src and "np.logaddexp" in src
    report = check_module(load_module(src, "mish"), spec)
    assert report.ok, report.table()


@pytest.mark.parametrize("width", [4, 40], ids=["straight-line", "arrays"])
def test_a_user_activation_found_in_its_own_derivative_is_read_off_the_stored_output(width):
    """tanh(g(z))′ = (1 − h²)·g′(z): σ′ reads h and z, and tanh is evaluated once per entry. In the
    array code σ′ comes right after h, while both are still in cache, and then z is let go."""
    spec = spec_from_flags(3, f"{width}:tanh(z**2/2 + z),2:identity", loss="mse")
    source = numpy_source(spec)
    train = source[source.index("def _single(" if width == 4 else "def loss_and_grads"):]
    train = train[:train.index("return")]
    assert train.count("np.tanh(") == (width if width == 4 else 1)
    assert ("dact1_1 = (1 - h1_1**2)*(z1_1 + 1)" if width == 4 else "dact1 = (1 - h1**2)*(z1 + 1)") in train
    assert "out=z1" not in train  # z⁽¹⁾ is read by the derivative, so h⁽¹⁾ does not overwrite it
    if width == 40:
        code = "\n".join(line for line in train.splitlines() if not line.lstrip().startswith("#"))
        assert ("    h1 = np.tanh((1/2)*z1**2 + z1)\n    dact1 = (1 - h1**2)*(z1 + 1)\n"
                "    del z1  # not read again\n") in code
    report = check_module(load_module(source, f"tanh_of_g_{width}"), spec, seed=1, points=2)
    assert report.ok, report.table()


def test_small_networks_get_straight_line_code_for_one_example():
    small = render_numpy(derive(load_preset("relu-softmax-label")))
    assert "def _single(" in small and "if x.ndim == 1:" in small
    wide = numpy_source(spec_from_flags(16, "16:relu,3:softmax", loss="ce", target="index"))
    assert "def _single(" not in wide


def test_wide_networks_are_generated_from_a_narrow_derivation_and_are_correct():
    """The code printed at widths 3 and 4 is the same, so it is the code for any width; checked at 40."""
    spec = spec_from_flags(40, "30:tanh,20:relu,5:softmax", loss="ce", convention="row")
    source = numpy_source(spec)
    module = load_module(source, "wide")
    assert module.PARAM_SHAPES == {"W1": (40, 30), "b1": (30,), "W2": (30, 20), "b2": (20,), "W3": (20, 5),
                                   "b3": (5,)}
    report = check_module(module, spec, seed=2, points=1)
    assert report.ok, report.table()


def test_width_dependent_code_falls_back_to_the_full_derivation():
    """mse's 2/K depends on the output width: the narrow derivations differ, so the full one is used."""
    spec = spec_from_flags(6, "6:sigmoid", loss="mse")
    assert numpy_source(spec) == render_numpy(derive(spec))
    # ... or only the output width is kept, when the hidden widths do not matter
    wide = spec_from_flags(30, "20:relu,6:sigmoid", loss="mse")
    report = check_module(load_module(numpy_source(wide), "mse_wide"), wide, points=1)
    assert report.ok, report.table()


@pytest.mark.parametrize("name", ["relu-softmax-label", "sigmoid-4321-bce", "two-layer-relu"])
def test_batch_of_one_takes_the_straight_line_path_and_agrees(name):
    spec = load_preset(name)
    module = module_for(spec)
    rng = np.random.default_rng(5)
    params, x, y = sample_point(module, spec, rng, batch=2)
    value, grads = module.loss_and_grads(params, x, y)
    # the same two examples through the array code: drop to one example each and average
    one = [module.loss_and_grads(params, x[k:k + 1], y[k:k + 1]) for k in range(2)]
    factor = 0.5 if spec.loss.batch == "mean" else 1.0
    assert np.isclose(value, factor * (one[0][0] + one[1][0]))
    for key in grads:
        assert np.allclose(grads[key], factor * (one[0][1][key] + one[1][1][key]))
