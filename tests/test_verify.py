"""The numeric checker: the points it samples are ones where its comparisons can be trusted."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from derive.derivation import derive
from derive.errors import DeriveError
from derive.render.numpy import numpy_source, render_numpy
from derive.spec import spec_from_dict, spec_from_flags
from derive.verify import (
    FD_ENTRIES,
    PRE_ACTIVATION_BOUND,
    check_module,
    clearing_shift,
    fd_entries,
    finite_differences,
    load_module,
    sample_point,
    torch_available,
)

from .helpers import sweep


def test_stacked_growing_activations_are_sampled_where_differences_stay_accurate():
    """Three layers of z³/3 + z under a sigmoid with BCE: at a plain random point the logits reach the
    thousands, the output saturates and a central difference loses its digits. The sampler keeps
    every pre-activation moderate and away from kinks, so the check passes for the right reason."""
    cubic = {"units": 2, "activation": "z**3/3 + z", "bias": False}
    spec = spec_from_dict({"input": 2, "layer": [cubic, cubic, {**cubic, "units": 4},
                                                 {"units": 4, "activation": "sigmoid"}],
                           "loss": {"kind": "bce"}})
    module = load_module(render_numpy(derive(spec)), "cubic")
    rng = np.random.default_rng(0)
    for _ in range(5):
        params, x, _ = sample_point(module, spec, rng, batch=4)
        values = module.forward(params, x)
        assert all(np.max(np.abs(values[f"z{l}"])) <= PRE_ACTIVATION_BOUND for l in range(1, 5))
    report = check_module(module, spec)
    assert report.ok, report.table()


@pytest.mark.parametrize("formula", ["log(z)", "1/z + sqrt(z)"])
def test_a_formula_defined_on_part_of_the_line_is_checked_inside_its_domain(formula):
    """log z is not defined for z ≤ 0: points there make nan, which is no evidence about the
    gradients; the sampler keeps to points where the whole forward pass is finite."""
    spec = spec_from_dict({"input": 2, "layer": [{"units": 3, "activation": formula}]})
    module = load_module(render_numpy(derive(spec)), "domain")
    params, x, _ = sample_point(module, spec, np.random.default_rng(0), batch=4)
    assert np.all(module.forward(params, x)["z1"] > 0)
    report = check_module(module, spec)
    assert report.ok, report.table()


def test_binary_cross_entropy_is_checked_where_a_user_output_lies_in_0_1():
    """tanh(g(z)) may be negative, and bce takes its log: points there make a nan loss, which said
    GRADIENTS DISAGREE about correct code. The sampler keeps to points where the loss is finite."""
    spec = spec_from_dict({"input": 3, "layer": [{"units": 4, "activation": "z*exp(z)"},
                                                 {"units": 2, "activation": "tanh(z**2/2 + z)"}],
                           "loss": {"kind": "bce"}})
    module = load_module(render_numpy(derive(spec)), "bce_range")
    for seed in range(3):
        params, x, y = sample_point(module, spec, np.random.default_rng(seed), batch=3)
        yhat = module.forward(params, x)["yhat"]
        assert np.all((yhat > 0) & (yhat < 1)) and np.isfinite(module.loss(params, x, y))
        report = check_module(module, spec, seed=seed)
        assert report.ok, report.table()


def test_a_formula_defined_nowhere_cannot_be_checked():
    spec = spec_from_dict({"input": 2, "layer": [{"units": 2, "activation": "sqrt(-1 - z**2)"}]})
    module = load_module(render_numpy(derive(spec)), "nowhere")
    with pytest.raises(DeriveError, match="no random point where every activation and the loss are defined"):
        check_module(module, spec)


def test_kinked_pre_activations_keep_their_margin():
    spec = spec_from_dict({"input": 3, "layer": [{"units": 5, "activation": "relu"},
                                                 {"units": 4, "activation": "Piecewise((z, z > 0), (z/4, True))"},
                                                 {"units": 1}]})
    module = load_module(render_numpy(derive(spec)), "kinks")
    params, x, _ = sample_point(module, spec, np.random.default_rng(1), batch=8, margin=0.05)
    values = module.forward(params, x)
    assert np.min(np.abs(values["z1"])) > 0.05 and np.min(np.abs(values["z2"])) > 0.05


def test_a_network_of_mnist_size_is_checked():
    """784 → 256 → 256 → 10 with relu: 1536 relu pre-activations in a batch of 3, each within 0.01 of
    0 with chance 0.8 %, so no random point kept them all clear (`derive check` gave up with exit 2).
    Kinked units' biases are now moved just clear of the kink; and finite differences, which would
    take minutes over 270 000 entries, take FD_ENTRIES of each large parameter at random."""
    spec = spec_from_flags(784, "256:relu,256:relu,10:softmax", loss="ce", target="index")
    module = load_module(numpy_source(spec), "mnist")
    params, x, _ = sample_point(module, spec, np.random.default_rng(0), batch=3)
    values = module.forward(params, x)
    assert min(np.min(np.abs(values[f"z{l}"])) for l in (1, 2)) > 1e-2
    report = check_module(module, spec)
    assert report.ok, report.table()
    assert any(note.startswith(f"finite differences at {FD_ENTRIES} entries") and "W1 (200704)" in note
               for note in report.notes)


@pytest.mark.parametrize("convention", ["column", "row"])
def test_kinks_are_cleared_through_the_weights_of_a_layer_without_biases(convention):
    """1536 kinked pre-activations in a batch of 3 and no bias to move (a random point keeps them all
    0.01 clear with chance 4e-6): a rank-one change of each layer's weights shifts its units instead."""
    spec = spec_from_dict({"input": 20, "convention": convention, "loss": {"kind": "half_sse"},
                           "layer": [{"units": 256, "activation": "relu", "bias": False},
                                     {"units": 256, "activation": "leaky_relu", "bias": False},
                                     {"units": 2, "bias": False}]})
    module = load_module(numpy_source(spec), f"no_bias_{convention}")
    params, x, _ = sample_point(module, spec, np.random.default_rng(2), batch=3)
    values = module.forward(params, x)
    assert min(np.min(np.abs(values[f"z{l}"])) for l in (1, 2)) > 1e-2
    assert set(params) == {"W1", "W2", "W3"}
    report = check_module(module, spec, points=2)
    assert report.ok, report.table()


@settings(max_examples=sweep(60, 300))
@given(arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 5)),
              elements=st.floats(-0.1, 0.1) | st.sampled_from([0.0, 0.01, -0.01, 0.015, -0.005])))
def test_the_clearing_shift_clears_every_column_and_is_zero_where_it_can_be(z):
    margin = 0.01
    shift = clearing_shift(z, margin)
    assert np.all(np.abs(z + shift) > margin)
    assert np.all(np.abs(shift) <= 1.5 * margin * (2 * z.shape[0] + 2))
    already = np.all(np.abs(z) > margin, axis=0)
    assert np.all(shift[already] == 0)


def test_finite_differences_at_chosen_entries_equal_those_of_every_entry():
    spec = spec_from_dict(SPEC)
    module = load_module(render_numpy(derive(spec)), "fd_entries")
    rng = np.random.default_rng(3)
    params, x, y = sample_point(module, spec, rng, batch=3)
    chosen = fd_entries(params, rng, most=4)
    assert set(chosen) == {"W1", "W2"}  # b1 has 4 entries and b2 2: every one of them
    every, some = finite_differences(module, params, x, y), finite_differences(module, params, x, y, entries=chosen)
    for name, flat in chosen.items():
        assert len(set(flat)) == 4
        assert np.array_equal(some[name].reshape(-1)[flat], every[name].reshape(-1)[flat])
        assert np.isnan(np.delete(some[name].reshape(-1), flat)).all()
    assert np.array_equal(some["b1"], every["b1"]) and np.array_equal(some["b2"], every["b2"])


def _nudged(module, param: str, scale: float):
    """`module` with one entry of one gradient (or, for param "L", the loss) scaled: a wrong module."""
    right = module.loss_and_grads

    def loss_and_grads(params, x, y):
        value, grads = right(params, x, y)
        if param == "L":
            return value * scale, grads
        wrong = grads[param].copy()
        wrong.flat[0] = wrong.flat[0] * scale if wrong.flat[0] else 1e-3
        return value, {**grads, param: wrong}

    module.loss_and_grads = loss_and_grads
    return module


SPEC = {"input": 3, "layer": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
        "loss": {"kind": "bce"}}


def test_the_checker_names_the_one_gradient_that_is_wrong():
    spec = spec_from_dict(SPEC)
    module = _nudged(load_module(render_numpy(derive(spec)), "nudged_b1"), "b1", 1 + 1e-4)
    report = check_module(module, spec)
    assert not report.ok and "GRADIENTS DISAGREE" in report.table()
    wrong = {(r.reference, r.param) for r in report.rows if not r.ok}
    expected = {("finite differences", "b1")} | ({("torch autograd", "b1")} if torch_available() else set())
    assert wrong == expected


def test_the_checker_compares_the_loss_with_torch():
    if not torch_available():
        pytest.skip("needs torch: without it the loss is only differentiated, not compared")
    spec = spec_from_dict(SPEC)
    module = _nudged(load_module(render_numpy(derive(spec)), "nudged_loss"), "L", 1 + 1e-3)
    report = check_module(module, spec)
    assert [(r.reference, r.point) for r in report.rows if not r.ok] == [("torch loss", "one example"),
                                                                         ("torch loss", "batch of 3")]


def test_ci_compares_with_torch():
    """Every comparison with PyTorch runs where torch is importable; in CI it must be (.ci/run installs
    the CPU wheel), or those comparisons would drop out unnoticed."""
    if not os.environ.get("CI"):
        pytest.skip("outside CI, torch is an optional extra")
    assert torch_available(), "torch is missing in CI: .ci/run must install torch==2.13.0"
