import pytest
from hypothesis import given

from derive.errors import DeriveError
from derive.spec import load_spec, preset_names, spec_from_dict, spec_from_flags

from .helpers import spec_dicts

BASE = {"input": 2, "layer": [{"units": 2, "activation": "relu"}, {"units": 1}]}


def test_defaults_are_filled_in():
    spec = spec_from_dict(BASE)
    data = spec.to_dict()
    assert data["convention"] == "column" and data["layout"] == "gradient" and data["vec"] == "row-major"
    assert data["loss"] == {"kind": "half_sse", "target": "vector", "batch": "mean"}
    assert data["layer"][1] == {"units": 1, "activation": "identity", "bias": True}


@given(spec_dicts())
def test_to_dict_reads_back_to_the_same_spec(data):
    spec = spec_from_dict(data)
    assert spec_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("data, fragment", [
    ({**BASE, "layr": []}, "did you mean 'layer'"),
    ({**BASE, "layer": [{"units": 0}]}, "layer 1.units: must be at least 1"),
    ({**BASE, "layer": [{"units": -3}]}, "at least 1"),
    ({**BASE, "layer": [{"units": 2.5}]}, "whole number"),
    ({**BASE, "layer": [{"units": 2, "activaton": "relu"}]}, "did you mean 'activation'"),
    ({**BASE, "layer": [{"units": 2, "activation": "swish"}]}, "layer 1.activation: unknown activation 'swish'"),
    ({**BASE, "layer": [{"units": 2, "activation": "exp(w)"}]}, "uses 'w'"),
    ({**BASE, "name": "two layers"}, "is not a name"),
    ({**BASE, "name": "a/b"}, "is not a name"),
    ({**BASE, "convention": "diagonal"}, "not one of column, row"),
    ({**BASE, "loss": {"kind": "hinge"}}, "unknown loss 'hinge'"),
    ({**BASE, "loss": {"knd": "sse"}}, "did you mean 'kind'"),
    ({**BASE, "loss": {"kind": "sse", "target": "index"}}, "needs kind = \"ce\""),
    ({**BASE, "loss": {"kind": "bce"}}, "needs sigmoid or softmax"),
    ({**BASE, "layer": []}, "at least one [[layer]]"),
    ({"layer": [{"units": 1}]}, "missing 'input'"),
    ({**BASE, "input": 0}, "input: must be at least 1"),
    ({**BASE, "layer": [{"units": 1, "activation": "relu", "slope": 0.1}]}, "'slope' applies only"),
    ({**BASE, "notation": {"pre": "\\input"}}, "is not a letter"),
    ({**BASE, "title": "Two\nlines"}, "title: must be one line of printable text, and has '\\n'"),
    ({**BASE, "title": "\x1b[2J"}, "title: must be one line of printable text, and has '\\x1b'"),
    ({**BASE, "description": "a\rb"}, "description: must be one line of printable text"),
    ({**BASE, "layer": [{"units": 2, "activation": "z # note"}]}, "layer 1.activation: activation expression"),
    ({**BASE, "notation": {"index_style": "roman"}}, "not one of"),
    ({**BASE, "example": {"x": [1, 2]}}, "missing 'y'"),
    ({**BASE, "example": {"x": [1], "y": [1], "W1": [[1, 1], [1, 1]], "b1": [0, 0], "W2": [[1, 1]],
                          "b2": [0]}}, "example.x: must be a list of 2 numbers"),
])
def test_bad_specs_name_the_problem_and_where(data, fragment):
    with pytest.raises(DeriveError) as err:
        spec_from_dict(data, "f.toml")
    assert fragment in str(err.value)
    assert str(err.value).startswith("f.toml")


def test_flags_make_the_same_spec_as_a_file():
    flags = spec_from_flags(2, "2:relu,1:identity", loss="half_sse")
    assert flags == spec_from_dict({**BASE, "loss": {"kind": "half_sse"}}, "x")


def test_flags_are_checked_like_files():
    with pytest.raises(DeriveError, match="--layers item 2"):
        spec_from_flags(2, "2:relu,x:identity")
    with pytest.raises(DeriveError, match="unknown activation"):
        spec_from_flags(2, "2:relux")


def test_presets_and_files_resolve(tmp_path):
    assert "two-layer-relu" in preset_names()
    path = tmp_path / "net.toml"
    path.write_text('input = 1\n[[layer]]\nunits = 1\n')
    assert load_spec(str(path)).input == 1
    with pytest.raises(DeriveError, match="no such file or preset"):
        load_spec("no-such-preset")
    with pytest.raises(DeriveError, match="no such file"):
        load_spec(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("input = [\n")
    with pytest.raises(DeriveError, match="invalid TOML"):
        load_spec(str(bad))
