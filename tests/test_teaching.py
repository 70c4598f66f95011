"""Every displayed formula carries the check that proved it; the seeds' devices are derived and checked."""

import dataclasses

import pytest
import sympy as sp
from hypothesis import given, settings

from derive.chain import Step
from derive.checks import METHODS, Check
from derive.derivation import derive
from derive.index_form import IndexStep
from derive.render.latex import handout_view
from derive.render.text import render_text
from derive.render.view import Printers, build_view, display_for
from derive.spec import load_preset, preset_names, spec_from_dict, spec_from_flags

from .helpers import derive_cached, specs, sweep


def formulas(node, seen=None):
    """Every Step and IndexStep reachable from a derivation's data model."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, Step | IndexStep):
        yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            if f.name in ("spec", "network", "blocks"):
                continue
            yield from formulas(getattr(node, f.name), seen)
    elif isinstance(node, tuple | list):
        for item in node:
            yield from formulas(item, seen)


def displayed_lines(view):
    """Every dict of a rendered view that shows a formula (it has an lhs)."""
    if isinstance(view, dict):
        if "lhs" in view:
            yield view
        for value in view.values():
            yield from displayed_lines(value)
    elif isinstance(view, list | tuple):
        for value in view:
            yield from displayed_lines(value)


def text_view(d):
    from derive.render.printers import TextPrinter
    from derive.render.text import grid_fits, text_matrix

    display = display_for(d)
    printer = TextPrinter(display)
    p = Printers(printer.doprint, lambda m, shape=None: text_matrix(m, printer, shape=shape), display, latex=False,
                 fits=lambda m: grid_fits(m, printer))
    return build_view(d, p, lambda disp: TextPrinter(disp).doprint)


def assert_every_formula_checked(d):
    steps = list(formulas(d))
    assert steps, "no formulas found"
    for s in steps:
        assert isinstance(s.check, Check) and s.check.method in METHODS, s
        assert s.check.passed, (s.lhs, s.check)
    for view in (text_view(d), handout_view(d)):
        lines = list(displayed_lines(view))
        assert lines
        for line in lines:
            assert "check" in line and line["check"]["passed"], line
            assert line["check"]["method"] in METHODS


@pytest.mark.parametrize("name", preset_names())
def test_every_displayed_formula_of_a_preset_has_a_passed_check(name):
    assert_every_formula_checked(derive(load_preset(name)))


@settings(max_examples=sweep(10, 50))
@given(specs(max_depth=3, max_width=3))
def test_every_displayed_formula_of_a_random_spec_has_a_passed_check(spec):
    assert_every_formula_checked(derive_cached(spec))


def test_a_wrong_step_is_shown_as_not_verified(monkeypatch):
    """The check is real: a rule that gives the wrong block form fails its check, the derivation is not
    verified, and the text says NOT VERIFIED."""
    import derive.chain as chain

    monkeypatch.setattr(chain, "outer_product", lambda delta, a, convention: sp.MatMul(2, delta, a.T))
    d = derive(spec_from_flags(2, "2:relu,1:identity"))
    step = next(s for s in d.gradient("W1").steps if s.rule == "flattened weight to outer product")
    assert not step.check.passed and not d.verified
    assert "NOT VERIFIED" in render_text(d)


def test_the_sum_over_paths_is_the_jacobians_column():
    d = derive(load_preset("softmax-ce-three-layer"))
    paths = d.teaching.paths
    assert (paths.layer, paths.unit, paths.paths) == (2, 1, 3)
    terms = sp.Add.make_args(paths.value.rhs)
    assert len(terms) == 3  # one per unit of the next layer
    W3 = d.network.layers[2].W
    assert {frozenset(t.free_symbols & set(W3)) for t in terms} == {frozenset({W3[m, 0]}) for m in range(3)}
    # the step before: Σₘ δₘ Wₘ₁, each path's local derivative its weight, checked against the Jacobian
    assert paths.weights.check.passed and paths.weights.rhs.has(sp.Indexed)


def test_no_sum_over_paths_into_a_single_unit():
    """Seed 000's output has one unit: h₁ feeds one path, and no sum is shown for it."""
    d = derive(spec_from_flags(2, "2:relu,1:identity"))
    assert d.teaching.paths is None


def test_one_weights_column_has_one_nonzero_entry():
    d = derive(load_preset("relu-softmax-label"))
    wc = d.teaching.weight_column
    assert wc.layer == 3 and wc.weight.name == "W3_2_1"
    column = wc.column.rhs
    assert [e != 0 for e in column] == [False, True, False]
    assert wc.gradient.rhs == sp.Symbol("delta3_2") * sp.Symbol("h2_1")


def test_the_dependency_pattern_counts_the_zeros():
    d = derive(load_preset("two-layer-relu"))
    by_name = {dep.jacobian: dep for dep in d.teaching.dependencies}
    weights = by_name["dz1/dW1"]
    assert sum(row.count(True) for row in weights.zero) == 4  # of 2 × 4
    assert weights.check.passed
    activation = by_name["dh1/dz1"]
    assert [list(row) for row in activation.zero] == [[False, True], [True, False]]


def test_one_unit_with_scalars_for_seed_001():
    d = derive(load_preset("sigmoid-4321-bce"))
    unit = d.teaching.unit
    assert unit.layer == 1 and unit.unit == 1
    weights = [s for s in unit.steps if isinstance(s.lhs, sp.Derivative) and s.lhs.variables[0].name.startswith("W")]
    assert len(weights) == 4  # the four inputs' weights into unit 1 (row convention: W[k, 1])
    assert all(s.lhs.variables[0].name.endswith("_1") for s in weights)


def test_the_recursion_for_any_depth_is_each_layers_result():
    d = derive(load_preset("softmax-ce-three-layer"))
    r = d.teaching.recursion
    assert r.check.passed and r.check.method == "instances" and r.template == 1


def test_no_recursion_when_hidden_layers_take_different_steps():
    d = derive(spec_from_flags(2, "3:softmax,2:sigmoid,1:identity", loss="half_sse"))
    assert d.teaching.recursion is None


def test_display_options_switch_the_devices_off():
    data = {"input": 2, "layer": [{"units": 2, "activation": "relu"}, {"units": 2}],
            "display": {"paths": False, "dependency": False, "weight_column": False, "index_form": False}}
    d = derive(spec_from_dict(data))
    t = d.teaching
    assert t.paths is None and t.dependencies == () and t.weight_column is None
    # the index forms are still derived (the δ recursion's check reads them), but not shown
    text = render_text(d)
    assert t.index is not None and "Any size" not in text and "Any layer" in text


def test_the_flattened_row_is_shown_once():
    text = render_text(derive(load_preset("two-layer-relu")))
    assert text.count("∂L/∂vec(W⁽¹⁾) =    (1×4)") == 1
    assert "∂L/∂vec(W⁽²⁾) =    (1×2)" not in text
