"""Index notation at general sizes: SymPy's own results, and the same written out at concrete sizes
against the explicit matrix derivation."""

import pytest
import sympy as sp

from derive.index_form import (
    OTHER_SIZES,
    WIDTHS,
    Generic,
    OutOfRange,
    _agrees,
    _in_range,
    collapse,
    generic_steps,
    index_forms,
    output_steps,
)


@pytest.mark.parametrize("convention", ["column", "row"])
@pytest.mark.parametrize("vec", ["row-major", "column-major"])
def test_every_generic_step_holds_at_every_size(convention, vec):
    forms = index_forms(convention, vec, (3, 4, 2), True, ("softmax", True))
    assert forms.verified
    assert len({s.check.detail for s in forms.steps if s.name != "affine"}) == 1
    assert all("3×4×2" in s.check.detail for s in forms.steps if s.name != "affine")


def test_the_gradient_entry_is_delta_times_input():
    """∂L/∂W_jk = δ_j a_k (column convention) and a_j δ_k (row), as SymPy sums the Kronecker deltas out."""
    for convention in ("column", "row"):
        g = Generic(convention)
        steps = {name: forms for name, _, forms in generic_steps(convention, True)}
        assert steps["weight"][-1] == g.delta[g.j] * g.a[g.k]
        assert steps["bias"][-1] == g.delta[g.j]
        weight_next = g.W_next[g.m, g.j] if convention == "column" else g.W_next[g.j, g.m]
        assert steps["input Jacobian"][-1] == weight_next
        recursion = steps["delta"][-1]
        assert recursion.has(sp.Sum) and recursion.has(g.delta_next[g.m])


@pytest.mark.parametrize("name", ["weight", "upstream", "delta", "weight Jacobian"])
def test_a_wrong_form_fails_at_some_size(name):
    """The size checks can fail: the right form with two indices swapped, or doubled, does not pass."""
    g = Generic("column")
    forms = {n: f for n, _, f in generic_steps("column", True)}
    right = forms[name][-1]
    wrong = right.xreplace({g.j: g.k, g.k: g.j}) if name in ("weight", "weight Jacobian") else 2 * right
    sizes = ((3, 4, 2), *OTHER_SIZES)
    assert all(_agrees(name, right, "column", "row-major", s, True) for s in sizes)
    assert not all(_agrees(name, wrong, "column", "row-major", s, True) for s in sizes)


def test_a_range_condition_is_discharged_only_by_the_index_range():
    k = sp.Idx("k", (1, WIDTHS[0]))
    assert _in_range(sp.Le(k, WIDTHS[0])) and _in_range(sp.Ge(WIDTHS[0], k))
    assert not _in_range(sp.Le(k, WIDTHS[1]))
    other = sp.Piecewise((sp.Symbol("a"), sp.Le(k, WIDTHS[1])), (0, True))
    with pytest.raises(OutOfRange):
        collapse(other)


def test_softmax_with_cross_entropy_collapses_to_the_error():
    _lhs, forms = output_steps("column", "softmax", True)
    g = Generic("column", output=True)
    assert forms[-1] == g.h[g.j] - sp.IndexedBase("y")[g.j]
    assert any(f.has(sp.Sum) and f.has(sp.IndexedBase("y")) for f in forms[:-1])


def test_elementwise_output_is_the_loss_gradient_times_the_derivative():
    _lhs, forms = output_steps("row", "elementwise", False)
    g = Generic("row", output=True)
    assert forms[-1] == sp.IndexedBase("gL")[g.j] * sp.Derivative(g.f(g.z[g.j]), g.z[g.j])
