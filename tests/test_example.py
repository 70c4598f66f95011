"""Worked examples: exact numbers through every step, and numbers a formula cannot take."""

import pytest
import sympy as sp

from derive.derivation import derive
from derive.errors import DeriveError
from derive.spec import spec_from_dict

from .test_cli import run


def one_unit(formula: str, w: int) -> dict:
    """x = 1 through one unit f(w x) and a squared error against y = 0."""
    return {"input": 1, "layer": [{"units": 1, "activation": formula, "bias": False}], "loss": {"kind": "sse"},
            "example": {"x": [1], "y": [0], "W1": [[w]]}}


def test_a_formula_inside_its_domain_is_worked_exactly():
    """log(w x) at w = 2: the gradient is the derivative of the composed loss, (log(w x))², exactly."""
    example = derive(spec_from_dict(one_unit("log(z)", 2))).example
    w = sp.Symbol("w")
    expected = sp.diff(sp.log(w * 1) ** 2, w).subs(w, 2)
    (gradient,) = [q for q in example.gradients if q.name == "W1"]
    assert sp.simplify(gradient.exact[0, 0] - expected) == 0 and example.agrees


@pytest.mark.parametrize(("formula", "w", "problem"), [
    ("log(z)", -2, "at z1_1 = -2: it gives yhat_1 = log(2) + I*pi, which is not a real number"),
    ("1/z", 0, "at z1_1 = 0: yhat_1 is not finite there"),
    ("sqrt(z)", -4, "at z1_1 = -4: it gives yhat_1 = 2*I, which is not a real number"),
])
def test_numbers_outside_a_formulas_domain_are_named(formula, w, problem):
    with pytest.raises(DeriveError, match=r"^example: the numbers leave the domain of layer 1's activation") as err:
        derive(spec_from_dict(one_unit(formula, w)))
    assert problem in str(err.value)


def test_the_cli_says_so_in_one_line_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "log.toml"
    spec.write_text('input = 1\n[[layer]]\nunits = 1\nactivation = "log(z)"\nbias = false\n[loss]\nkind = "sse"\n'
                    "[example]\nx = [1]\ny = [0]\nW1 = [[-2]]\n")
    out = tmp_path / "log.tex"
    code, _, err = run(["latex", str(spec), "-o", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a real number" in err and not out.exists()
