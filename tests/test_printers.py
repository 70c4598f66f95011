"""The printers change names and the order of terms, never values: what they print reads back."""

import re

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import parse_expr

from derive.derivation import derive
from derive.identities import entry_is_zero
from derive.render.printers import NotationLatexPrinter, TextPrinter
from derive.render.view import display_for
from derive.spec import spec_from_flags

from .helpers import sweep

U, V = sp.symbols("u v", positive=True)
DISPLAY = display_for(derive(spec_from_flags(1, "1:identity")))
_SUPERSCRIPTS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def read_text(text: str) -> sp.Expr:
    """The text printer's output back as SymPy: e² is exp(2), x² is x**2, · and − are * and -."""
    text = text.replace("·", "*").replace("−", "-").replace("^", "**")
    text = re.sub(r"\be([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: f"exp({m[1].translate(_SUPERSCRIPTS)})", text)
    text = re.sub(r"([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: f"**{m[1].translate(_SUPERSCRIPTS)}", text)
    text = re.sub(r"\be\b", "E", text)
    return parse_expr(text, local_dict={"u": U, "v": V, "E": sp.E, "exp": sp.exp})


atoms = st.sampled_from([U, V, sp.E, sp.exp(2), sp.Integer(1), sp.Integer(2), sp.Integer(-3), sp.Rational(1, 2)])


@st.composite
def expressions(draw, depth=3):
    if depth == 0:
        return draw(atoms)
    a, b = draw(expressions(depth=depth - 1)), draw(expressions(depth=depth - 1))
    op = draw(st.sampled_from(["add", "sub", "mul", "div", "pow"]))
    if op == "div" and b == 0:
        op = "add"
    return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b if b != 0 else a,
            "pow": a ** draw(st.sampled_from([2, 3, -1, -2]))}[op]


@settings(max_examples=sweep(150, 600))
@given(expressions())
def test_the_text_printer_reads_back(expr):
    if expr.has(sp.zoo, sp.nan):
        return
    assert entry_is_zero(read_text(TextPrinter(DISPLAY).doprint(expr)) - expr)


def test_one_over_a_sum_is_a_fraction_in_latex():
    """SymPy's LaTeX printer hands 1/x to the product printer as a power; it must stay 1/x."""
    e = 1 / (1 + sp.E + sp.E ** 2)
    assert NotationLatexPrinter(DISPLAY).doprint(e) == r"\frac{1}{1 + e + e^{2}}"
    assert TextPrinter(DISPLAY).doprint(e) == "1/(1 + e + e²)"


@settings(max_examples=sweep(100, 400))
@given(expressions())
def test_the_latex_printer_writes_a_reciprocal_as_sympy_does(expr):
    """Where SymPy's own LaTeX has no minus sign, ours has none either (1/x stays 1/x, not −x)."""
    if expr.has(sp.zoo, sp.nan):
        return
    ours = NotationLatexPrinter(DISPLAY).doprint(expr)
    theirs = sp.latex(expr, mul_symbol=None)
    if "-" not in theirs:
        assert "-" not in ours, (ours, theirs)
