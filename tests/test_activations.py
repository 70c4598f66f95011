import gc
import math
import re
import signal
import time

import pytest
import sympy as sp

from derive.activations import ACTIVATIONS, H, Z, _time_limit, get_activation, parse_user_activation
from derive.errors import DeriveError

ELEMENTWISE = [a for a in ACTIVATIONS.values() if a.elementwise]


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_derivative_matches_central_difference(act):
    f = sp.lambdify(Z, act.formula, "math")
    d = sp.lambdify(Z, act.derivative, modules=[{"Heaviside": lambda x, h0: h0 if x == 0 else float(x > 0)}, "math"])
    for z in (-2.3, -0.4, 0.7, 1.9):
        numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
        assert math.isclose(d(z), numeric, rel_tol=1e-6, abs_tol=1e-8)


@pytest.mark.parametrize("name, expected", [("sigmoid", H * (1 - H)), ("tanh", 1 - H**2), ("softplus", 1 - sp.exp(-H))])
def test_output_form_is_found_and_is_an_identity(name, expected):
    act = get_activation(name)
    assert sp.simplify(act.output_form - expected) == 0
    # the identity holds numerically at several points
    for z in (-1.5, 0.3, 2.0):
        h = float(act.formula.subs(Z, z))
        assert math.isclose(float(act.output_form.subs(H, h)), float(act.derivative.subs(Z, z)), rel_tol=1e-12)


@pytest.mark.parametrize(("text", "expected"), [("tanh(z**2/2 + z)", (1 - H**2) * (Z + 1)),
                                              ("exp(-z**2)", -2 * H * Z),
                                              ("z*exp(z)", H + sp.exp(Z))])
def test_where_no_inverse_serves_the_output_replaces_the_formula_inside_its_derivative(text, expected):
    """tanh(g(z))′ = (1 − tanh(g(z))²) g′(z): no form in h alone (g has two inverses), but the stored
    h still spares evaluating tanh again."""
    act = get_activation(text)
    assert sp.expand(act.output_form - expected) == 0
    for z in (-1.5, 0.3, 2.0):
        h = float(act.formula.subs(Z, z))
        value = float(act.output_form.subs({H: h, Z: z}))
        assert math.isclose(value, float(act.derivative.subs(Z, z)), rel_tol=1e-12)


def test_a_long_inner_formula_still_reads_the_output():
    """The length limit is for forms in h alone; one that keeps z is always shorter than the derivative."""
    act = get_activation("tanh(z**3/3 + sin(z)*cos(z) + tanh(z)*exp(-z**2) + cosh(z))")
    assert act.output_form.free_symbols == {H, Z} and not act.output_form.has(sp.tanh(act.formula.args[0]))
    for z in (-0.7, 0.4):
        h = float(act.formula.subs(Z, z))
        value = float(act.output_form.subs({H: h, Z: z}))
        assert math.isclose(value, float(act.derivative.subs(Z, z)), rel_tol=1e-12)


def test_a_form_in_the_output_alone_is_preferred_to_one_that_keeps_z():
    """exp(z)′ = exp(z) is found both by replacing the formula inside its derivative and by inverting
    it; either way it is h, and sigmoid's inverse gives h(1 − h), which has no z."""
    assert get_activation("exp(z)").output_form == H
    assert Z not in get_activation("1/(1 + exp(-z))").output_form.free_symbols
    assert get_activation("tanh(2*z)").output_form.free_symbols == {H}


def test_no_output_form_where_none_exists():
    assert get_activation("relu").output_form is None
    assert get_activation("identity").output_form is None
    assert get_activation("z/(1 + exp(-z))").output_form is None


@pytest.mark.parametrize("text", ["z/(1 + Abs(z))", "log(1 + Abs(z))", "z*Abs(z)"])
def test_abs_is_differentiated_for_real_z(text):
    """SymPy treats a plain symbol as complex and writes |z|′ through re(z), im(z) and unevaluated
    Derivatives, which no printer can turn into code; every variable here is real: |z|′ = sign(z)."""
    d = get_activation(text).derivative
    assert not d.has(sp.re, sp.im, sp.Derivative) and d.has(sp.sign)
    f = sp.lambdify(Z, get_activation(text).formula, "math")
    for z in (-2.3, -0.4, 0.7, 1.9):
        numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
        assert math.isclose(float(d.subs(Z, z)), numeric, rel_tol=1e-6, abs_tol=1e-8)


def test_relu_derivative_is_zero_at_zero():
    d = get_activation("relu").derivative
    assert d == sp.Heaviside(Z, 0)
    assert d.subs(Z, 0) == 0
    assert get_activation("Max(0, z)").derivative.subs(Z, 0) == 0


@pytest.mark.parametrize(("text", "steps"), [("Max(z, z/4)", {sp.Heaviside(Z, 0), sp.Heaviside(-Z, 0)}),
                                              ("Max(0, 2*z - 2)", {sp.Heaviside(Z - 1, 0)}),
                                              ("Min(0, 3*z)", {sp.Heaviside(-Z, 0)})])
def test_a_step_reads_its_sign_only(text, steps):
    """SymPy differentiates Max(z, z/4) into Heaviside(3z/4) + Heaviside(−3z/4)/4; a positive factor
    of a step's argument changes nothing, so it is dropped (and the value at 0 stays 0)."""
    act = get_activation(text)
    assert act.derivative.atoms(sp.Heaviside) == steps
    raw = sp.diff(act.formula, Z)
    for z in (-2.5, -0.3, 0.4, 1.7):
        assert float(act.derivative.subs(Z, z)) == float(raw.subs(Z, z))
    assert act.derivative.subs(Z, 0) == 0


def test_leaky_relu_slope_is_settable():
    act = get_activation("leaky_relu", sp.Rational(1, 5))
    assert act.derivative.subs(Z, -1) == sp.Rational(1, 5)
    assert act.derivative.subs(Z, 1) == 1
    assert get_activation("leaky_relu").derivative.subs(Z, -3) == sp.Rational(1, 100)


def test_user_expression_is_parsed_and_differentiated():
    act = parse_user_activation("z/(1 + exp(-z))")
    assert act.name == "custom"
    assert sp.simplify(act.derivative - sp.diff(Z / (1 + sp.exp(-Z)), Z)) == 0


def test_user_piecewise_is_parsed_and_differentiated():
    act = parse_user_activation("Piecewise((z, z > 0), (exp(z) - 1, True))")  # ELU
    assert act.kinked
    assert act.formula.subs(Z, 2) == 2 and act.formula.subs(Z, -1) == sp.exp(-1) - 1
    assert act.derivative.subs(Z, 2) == 1 and act.derivative.subs(Z, -1) == sp.exp(-1)
    three = parse_user_activation("Piecewise((1, z >= 1), (-1, z <= -1), (z, True))")  # hard tanh
    assert [three.derivative.subs(Z, v) for v in (2, 0, -2)] == [0, 1, 0]


def test_a_piecewise_must_cover_every_z():
    with pytest.raises(DeriveError, match="last branch"):
        parse_user_activation("Piecewise((z, z > 0))")


def test_user_float_constants_become_exact():
    act = parse_user_activation("0.5*z")
    assert act.formula == Z / 2


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "z.__class__", "exp(y)", "open('x')", "z +", "lambda: z", "z[0]",
    "3", "z; z", "z if z else 1", "eval('z')", "Symbol('q')", "z > 0", "True", "z*True", "z == 1",
    "Max(z > 0, 1)", "(z > 0) & (z < 1)", "z # a comment", 'z + 0*"text"', "(z\n+ 1)", "z \\\n+ 1", "z\x00",
])
def test_unsafe_or_malformed_expressions_are_rejected(text):
    with pytest.raises(DeriveError):
        parse_user_activation(text)


def test_a_character_no_formula_needs_is_named():
    """Comments, strings, backslashes and line breaks would reach the docstrings and documents that
    quote the formula; they are refused before parsing, and the message names the character."""
    for text, odd in [("z # note", "'#'"), ("(z\n+ 1)", "'\\n'"), ("z + 'a'", '"\'"'), ("z \\\n+ 1", "'\\\\'")]:
        with pytest.raises(DeriveError, match=re.escape(f"has an unexpected {odd}")):
            parse_user_activation(text)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(DeriveError) as err:
        get_activation("swish")
    assert "relu" in str(err.value) and "sigmoid" in str(err.value)


def test_softmax_is_a_vector_map():
    zs = sp.symbols("a b c")
    out = ACTIVATIONS["softmax"].apply(zs)
    assert sp.simplify(sum(out) - 1) == 0


def test_the_time_limit_survives_a_swallowed_alarm():
    """An alarm whose TimeoutError is dropped (as in a garbage-collector callback) is followed by
    another; afterwards no alarm is left armed and the old handler is back."""
    before = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    swallowed = 0
    with pytest.raises(TimeoutError), _time_limit(1):
        while time.monotonic() - start < 5:
            try:
                while time.monotonic() - start < 5:
                    pass
            except TimeoutError:
                swallowed += 1
                if swallowed > 1:
                    raise
    assert swallowed == 2 and time.monotonic() - start < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


@pytest.mark.parametrize("enabled", [True, False])
def test_no_garbage_collection_while_the_alarm_is_armed(enabled):
    """A collector callback (hypothesis installs one) is where Python drops the alarm's exception; with
    collection off during the limit there is none. The collector's state is restored afterwards."""
    (gc.enable if enabled else gc.disable)()
    try:
        with _time_limit(1):
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
