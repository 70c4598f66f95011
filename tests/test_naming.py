"""Names: user formulas get letters that tell them apart and do not clash with the notation's."""

from derive.activations import get_activation
from derive.derivation import derive
from derive.naming import function_names
from derive.render.view import display_for
from derive.spec import spec_from_dict


def test_user_formulas_get_distinct_letters_and_a_repeat_keeps_its_letter():
    elu = get_activation("Piecewise((z, z > 0), (exp(z) - 1, True))")
    cubic = get_activation("z**3/3 + z")
    acts = [elu, get_activation("relu"), cubic, get_activation("Piecewise((z, z > 0), (exp(z) - 1, True))")]
    assert function_names(acts) == ("f", "relu", "g", "f")


def test_letters_the_notation_uses_are_skipped():
    acts = [get_activation("z**3"), get_activation("z**5"), get_activation("sigmoid")]
    assert function_names(acts, taken={"g"}) == ("f", "φ", "σ")
    many = [get_activation(f"z**{k}") for k in range(2, 9)]
    names = function_names(many)
    assert len(set(names)) == len(names) == 7


def test_a_notation_that_writes_the_backward_quantity_g_gets_f_and_phi():
    spec = spec_from_dict({"input": 2, "notation": {"backward": "g"},
                           "layer": [{"units": 2, "activation": "z**3/3 + z"},
                                     {"units": 2, "activation": "Max(z, z/4)"}, {"units": 1}]})
    assert display_for(derive(spec)).functions == ("f", "φ", "id")
