"""The loss-domain warning: a loss that can never be defined on the activation feeding it."""

import pytest

from derive.cli import main
from derive.domain import loss_domain
from derive.spec import spec_from_flags


@pytest.mark.parametrize("activation", ["1/(1 - exp(-z))", "-exp(z)"])
def test_binary_cross_entropy_on_outputs_outside_0_1_warns(activation):
    """Seed 001 prints its sigmoid as 1/(1 − e^(−z)): below 0 or above 1, never inside."""
    warning = loss_domain(spec_from_flags(2, f"2:sigmoid,1:{activation}", loss="bce"))
    assert warning is not None and warning.proved and warning.layer == 2 and warning.needs == "(0, 1)"


def test_a_range_sympy_cannot_find_is_sampled():
    warning = loss_domain(spec_from_flags(2, "1:Piecewise((z + 2, z > 0), (-1, True))", loss="bce"))
    assert warning is not None and not warning.proved


@pytest.mark.parametrize(("activation", "loss"), [
    ("sigmoid", "bce"), ("1/(1 + exp(-z))", "mean_bce"), ("exp(z)", "ce"), ("z/(1 + exp(-z))", "bce"),
    ("identity", "sse"), ("Piecewise((z, z > 0), (exp(z)/2, True))", "bce")])
def test_a_loss_defined_somewhere_does_not_warn(activation, loss):
    units = "1" if loss != "ce" else "2"
    assert loss_domain(spec_from_flags(2, f"{units}:{activation}", loss=loss)) is None


def test_every_output_says_so(capsys):
    args = ["show", "--input", "2", "--layers", "1:1/(1 - exp(-z))", "--loss", "bce"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "warning" in captured.err and "yhat_1" in captured.err
    assert "WARNING   layer 1's activation never takes a value in (0, 1)" in captured.out
    assert main([*args, "--json"]) == 0
    assert '"warnings": [' in capsys.readouterr().out
