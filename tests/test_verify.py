"""The numeric checker: the points it samples are ones where its comparisons can be trusted."""

import numpy as np
import pytest

from derive.derivation import derive
from derive.errors import DeriveError
from derive.render.numpy import render_numpy
from derive.spec import spec_from_dict
from derive.verify import PRE_ACTIVATION_BOUND, check_module, load_module, sample_point, torch_available


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
    wrong = {(r.reference.rsplit(" ", 1)[0], r.param) for r in report.rows if not r.ok}
    expected = {("finite differences", "b1")} | ({("torch autograd", "b1")} if torch_available() else set())
    assert wrong == expected


def test_the_checker_compares_the_loss_with_torch():
    if not torch_available():
        pytest.skip("needs torch: without it the loss is only differentiated, not compared")
    spec = spec_from_dict(SPEC)
    module = _nudged(load_module(render_numpy(derive(spec)), "nudged_loss"), "L", 1 + 1e-3)
    report = check_module(module, spec)
    assert [r.reference for r in report.rows if not r.ok] == ["torch loss 1", "torch loss 2"]
