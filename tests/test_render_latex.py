"""LaTeX handouts and exercise sheets: they compile, fit the page, escape user text, and reproduce."""

import os
import re
import shutil

import pytest
import sympy as sp
from hypothesis import given, settings

from derive.cli import main
from derive.derivation import derive, derive_shown
from derive.errors import DeriveError
from derive.exercise import variant_spec
from derive.render.latex import escape_tex, overfull_boxes, render_exercise, render_handout, run_pdflatex
from derive.spec import load_preset, preset_names, spec_from_dict, spec_from_flags

from .helpers import derive_cached, specs, sweep

MAX_OVERFULL_PT = 3.0


@pytest.fixture
def tex():
    """pdflatex, or a skip on a machine without TeX; in CI its absence is a failure."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing in CI: .ci/run must install TeX Live")
        pytest.skip("pdflatex is not installed")
    return run_pdflatex


def compiles(source: str, tex) -> bytes:
    pdf, log = tex(source)
    assert pdf.startswith(b"%PDF")
    assert all(width <= MAX_OVERFULL_PT for width in overfull_boxes(log)), overfull_boxes(log)
    return pdf


def body(source: str) -> str:
    return source.split("\\begin{document}")[1]


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


MAX_PAGES = 6  # a preset's derivation, as short as its seed's treatment (seed 003's handout: 14 before)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_handout_compiles_fits_and_is_short(tex, name):
    spec = load_preset(name)
    source = render_handout(derive(spec))
    assert "\\begin{tikzpicture}" in source and "\\checked{" in body(source)
    assert "\\unchecked{" not in body(source)
    pdf = compiles(source, tex)
    # a worked example (seeds 000 and 004 have one) may take one page more
    assert pages(pdf) <= MAX_PAGES + (spec.example is not None), pages(pdf)


@settings(max_examples=sweep(3, 20))
@given(specs(max_depth=3, max_width=4))
def test_random_specs_compile(tex, spec):
    compiles(render_handout(derive_cached(spec)), tex)


def test_a_64_wide_layer_is_elided_and_fits(tex):
    source = render_handout(derive_shown(spec_from_flags(64, "64:relu,3:softmax", loss="ce")))
    assert "\\cdots" in source and "\\vdots" in source and "\\ddots" in source
    assert "Any size: index notation" in source
    compiles(source, tex)


def test_no_displayed_entry_runs_past_a_bounded_length():
    """Every cell of every matrix the handout sets is short: a long sum shows its first terms, a gap,
    and its last one; longer entries are listed one per line, each within MAX_ENTRY."""
    from derive.render.latex import MAX_ENTRY, MAX_ROW, visible_length

    for spec in (load_preset("softmax-ce-three-layer"), spec_from_flags(3, "12:tanh,12:sigmoid,3:softmax", loss="ce")):
        source = body(render_handout(derive_shown(spec)))
        for grid in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", source, re.S):
            for cell in re.split(r"&|\\\\", grid):
                assert visible_length(cell) <= MAX_ROW, cell
        for entry in re.findall(r"\\right\]_\{[\d,]+\} = (.*?)\}\\\]", source):
            assert visible_length(entry) <= MAX_ENTRY


def test_two_user_activations_are_told_apart_and_piecewise_typesets(tex):
    """Different formulas get different letters everywhere, and the handout's general recursion
    then writes σ_l rather than claiming one function for every layer."""
    spec = spec_from_flags(2, "2:Piecewise((z, z > 0), (exp(z) - 1, True)),2:z**3/3 + z,1:identity",
                           loss="half_sse")
    source = render_handout(derive(spec))
    assert "with activation $f$" in source and "with activation $g$" in source
    # each formula displayed once, after the sentence, where a long one cannot run off the page
    assert source.count("\\[\\fitmath{f(z) = \\begin{cases}") == 1 and source.count("\\[\\fitmath{g(z) = ") == 1
    assert "$\\mathbf{h}^{(1)}$, $f$" in source and "$\\mathbf{h}^{(2)}$, $g$" in source
    assert "g'(\\mathbf{z}^{(2)})" in source and "\\sigma_l" in source
    compiles(source, tex)


def test_a_long_user_formula_and_its_derivative_fit_the_page(tex):
    """Both are displayed (scaled to fit) rather than set inline, where TeX cannot break inside
    \\left( … \\right) and the line ran 38pt and 227pt past the margin."""
    spec = spec_from_flags(3, "3:tanh(z**3/3 + z**2/2 + sin(z)*cos(z) + exp(-z**2) + cosh(z)),2:softmax", loss="ce")
    compiles(render_handout(derive(spec)), tex)


def test_user_text_is_escaped():
    assert escape_tex(r"\input{/etc/passwd} $x$ & #1 % _ ^ ~") == (
        r"\textbackslash{}input\{/etc/passwd\} \$x\$ \& \#1 \% \_ \textasciicircum{} \textasciitilde{}")


def test_a_minus_sign_in_prose_is_set_as_a_minus_not_a_hyphen():
    spec = spec_from_dict({"title": "Loss of 1 − y", "input": 1, "layer": [{"units": 1}]})
    source = render_handout(derive(spec))
    assert "Loss of 1 $-$ y" in source and "1 - y" not in source
    assert escape_tex("p(1 − p), 1–3") == "p(1 $-$ p), 1--3"  # the en dash of a range stays a dash


def test_a_hostile_title_cannot_run_tex(tex):
    spec = spec_from_dict({"title": r"\def\x{1}\input{/etc/hostname} }{ $ & # % _ ^ ~ σ ü 漢",
                           "input": 1, "layer": [{"units": 1}]})
    source = render_handout(derive(spec))
    assert r"\input{/etc/hostname}" not in source
    assert r"\textbackslash{}def\textbackslash{}x\{1\}" in source
    compiles(source, tex)


def test_exercise_and_solution_compile(tex):
    sheet, solution = render_exercise(derive(load_preset("relu-softmax-label")), None)
    assert "Questions" in sheet and "\\vspace" in sheet
    assert "\\checked{" not in body(sheet)  # no answers on the problem sheet
    assert "\\checked{" in body(solution)
    compiles(sheet, tex)
    compiles(solution, tex)


def test_variants_are_reproducible_and_differ():
    spec = load_preset("two-layer-relu")
    assert variant_spec(spec, 3) == variant_spec(spec, 3)
    assert {variant_spec(spec, n).example for n in range(5)} != {variant_spec(spec, 0).example}
    v = variant_spec(spec, 5)
    assert v.layers[-1].units == spec.layers[-1].units and v.example is not None
    assert derive(v).example.agrees


def test_variants_keep_their_numbers_inside_every_formulas_domain():
    """A variant's numbers are drawn at random; for log(z) most draws put some z at or below 0, and
    those are drawn again, as a kink hit exactly is: every variant works out in real numbers."""
    spec = spec_from_flags(2, "2:log(z),1:identity", loss="sse")
    for n in range(8):
        example = derive(variant_spec(spec, n)).example
        assert example.agrees and all(sp.N(v).is_real for q in example.forward for v in q.exact)


def test_latex_cli_writes_sheet_and_solution(tmp_path, capsys):
    out = tmp_path / "sheet.tex"
    assert main(["latex", "two-layer-relu", "-o", str(out), "--exercise", "--variant", "2"]) == 0
    assert out.exists() and (tmp_path / "sheet-solution.tex").exists()
    assert "(variant 2)" in out.read_text()  # in the title, once


def test_pdf_is_reproducible(tex, tmp_path, capsys):
    first = tmp_path / "a.tex"
    second = tmp_path / "b.tex"
    assert main(["latex", "two-layer-relu", "-o", str(first), "--pdf"]) == 0
    assert main(["latex", "two-layer-relu", "-o", str(second), "--pdf"]) == 0
    assert first.with_suffix(".pdf").read_bytes() == second.with_suffix(".pdf").read_bytes()


def test_no_tex_engine_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = tmp_path / "h.tex"
    assert main(["latex", "two-layer-relu", "-o", str(out), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert "pdflatex not found" in err and err.count("\n") == 1
    assert not out.exists()


def test_latex_failure_names_the_first_error_and_line(tex):
    with pytest.raises(DeriveError) as err:
        tex("\\documentclass{article}\n\\begin{document}\n\\undefinedcommand\n\\end{document}\n")
    assert "Undefined control sequence" in str(err.value) and "line 3" in str(err.value)


def test_output_must_be_tex(tmp_path, capsys):
    assert main(["latex", "two-layer-relu", "-o", str(tmp_path / "h.pdf")]) == 2


def test_a_jacobians_note_is_a_sentence_that_begins_with_a_capital():
    """The note under a Jacobian is a sentence of its own, after the display."""
    tex = render_handout(derive(spec_from_flags(2, "3:sigmoid,2:tanh(z**2/2 + z),2:softmax", loss="ce")))
    notes = re.findall(r"\\end\{equation\*\}\n\{\\small (\S+)", tex)
    assert len(notes) >= 3 and all(not note[0].islower() for note in notes), notes


def test_scalar_derivatives_use_the_courses_letters_in_the_handout():
    """The course of sigmoid-sse-numerator writes s for the pre-activation and z for the activation."""
    tex = render_handout(derive(load_preset("sigmoid-sse-numerator")))
    assert r"the same written with the output $z = \sigma(s)$" in tex
    assert r"\sigma'(s) &= \fitrhs{" in tex and r"z \left(1 - z\right)}" in tex


def test_a_diagonal_of_long_entries_lists_the_diagonal_and_counts_the_zeros(tex):
    """The Jacobian's block form is set once, then each diagonal entry; the 12 off-diagonal places
    are one sentence, not twelve displays of `= 0`."""
    spec = spec_from_flags(2, "4:z*tanh(log(1 + exp(z))),1:identity", loss="half_sse")
    source = render_handout(derive(spec))
    section = source.split("diagonal, 4×4")[1].split("\\emph{The other")[0]
    assert section.count("\\operatorname{diag}") == 0  # the block form stands before the tag
    assert re.findall(r"\\right\]_\{(\d,\d)\}", section) == ["1,1", "2,2", "3,3", "4,4"]
    assert "\\emph{The other 12 entries are 0.}" in source and not re.search(r"\} = 0\}\\\]", source)
    compiles(source, tex)
