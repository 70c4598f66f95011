import re

import pytest

from derive.derivation import derive
from derive.render.text import render_text
from derive.render.view import spoken_list
from derive.spec import load_preset, spec_from_flags


def derivative_blocks(text: str) -> list[list[str]]:
    """Each activation derivative's block: its heading, then its lines, without the check marks."""
    blocks = []
    for part in text.split("The activation's derivative ")[1:]:
        lines = [line.strip() for line in part.splitlines()[:5]]
        blocks.append([lines[0]] + [line for line in lines[1:] if re.search(r"′\(\w+\) = ", line)])
    return blocks


def test_each_activation_derivative_is_shown_once_with_its_layers():
    """At the layer where the backward pass first meets it, with every layer it belongs to."""
    text = render_text(derive(spec_from_flags(2, "3:tanh,2:relu,2:tanh,1:sigmoid", loss="bce")))
    assert derivative_blocks(text) == [
        ["(layer 4):", "σ′(z) = exp(-z)/(1 + exp(-z))²", "σ′(z) = h·(1 − h)"],
        ["(layers 1 and 3):", "tanh′(z) = 1 − tanh(z)²", "tanh′(z) = 1 − h²"],
        ["(layer 2):", "relu′(z) = 1[z > 0]"],
    ]


def test_a_derivative_written_in_the_output_is_said_so_in_words_not_code():
    """The diagonal Jacobian's note points back to the identity instead of repeating it in Python
    syntax (it read `exp(-z)/(1 + exp(-z))**2 = h*(1 - h)`), and names no σ for a tanh layer."""
    text = render_text(derive(load_preset("sigmoid-4321-bce")))
    assert text.count("entries in the layer's output,") == 3
    tanh = render_text(derive(spec_from_flags(2, "2:tanh,1:identity", loss="half_sse")))
    assert "entries in the layer's output," in tanh and "σ" not in tanh
    for shown in (text, tanh):
        assert "**" not in shown and "h*(" not in shown and "a*(" not in shown


@pytest.mark.parametrize(("preset", "block"), [
    ("sigmoid-4321-bce", ["(layers 1, 2 and 3):", "σ′(z) = exp(-z)/(1 + exp(-z))²", "σ′(z) = a·(1 − a)"]),
    ("sigmoid-sse-numerator", ["(layers 1 and 2):", "σ′(s) = exp(-s)/(1 + exp(-s))²", "σ′(s) = z·(1 − z)"]),
    ("softmax-ce-three-layer", ["(layers 1 and 2):", "σ′(a) = exp(-a)/(1 + exp(-a))²", "σ′(a) = h·(1 − h)"])])
def test_scalar_derivatives_use_the_courses_letters(preset, block):
    """Where a course writes s for the pre-activation and z for the activation, σ′(z) = h(1 − h)
    would call the output by the pre-activation's letter: the scalar formulas use the notation's."""
    assert block in derivative_blocks(render_text(derive(load_preset(preset))))


@pytest.mark.parametrize(("items", "spoken"), [(["1"], "1"), (["1", "2"], "1 and 2"), (["1", "2", "3"], "1, 2 and 3")])
def test_spoken_list(items, spoken):
    assert spoken_list(items) == spoken


def test_entries_too_wide_for_a_grid_are_listed_without_the_zeros():
    """A diagonal Jacobian of long entries lists its diagonal and counts the zeros, instead of a line
    of 0 for each of the 12 off-diagonal places."""
    text = render_text(derive(spec_from_flags(2, "4:z*tanh(log(1 + exp(z))),1:identity", loss="half_sse")))
    section = text.split("∂h⁽¹⁾/∂z⁽¹⁾ = diag(")[1].split("\n\n")[0]
    listed = re.findall(r"\[(\d),(\d)\]", section)
    assert listed == [(str(i), str(i)) for i in range(1, 5)]
    assert section.rstrip().endswith("the other 12 entries are 0")
    assert not re.search(r"\]\s+0$", section, re.MULTILINE)


def test_absolute_values_and_minima_read_as_on_the_board():
    """|z| and min(0, z), not SymPy's Abs(z) and Min(0, z), in the network line, the forward equations
    and the derivative."""
    text = render_text(derive(spec_from_flags(2, "2:Abs(z)*Min(z, 0),1:identity", loss="sse")))
    assert "Abs" not in text and "Min(" not in text
    assert "f(z) = |z|·min(0, z)" in text
    assert "h⁽¹⁾₁ = |z⁽¹⁾₁|·min(0, z⁽¹⁾₁)" in text
    assert re.search(r"f′\(z\) = .*\|z\|.*sign\(z\)", text)


def test_a_step_reads_as_a_comparison_of_z():
    """1[z < 0] and 1[z > 1], not SymPy's Heaviside(−3z/4) or 1[−1 + z > 0]."""
    blocks = derivative_blocks(render_text(derive(spec_from_flags(2, "2:Max(z, z/4),2:Max(0, 2*z - 2),1:identity",
                                                                   loss="sse"))))
    assert ["(layer 1):", "f′(z) = 1[z < 0]/4 + 1[z > 0]"] in blocks
    assert ["(layer 2):", "g′(z) = 2·1[z > 1]"] in blocks
