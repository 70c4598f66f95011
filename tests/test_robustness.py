"""Every spec the parser accepts works with every command, or is refused by it in one line (exit 2):
no traceback, whatever the spec. Specs are drawn from the whole documented grammar, written as TOML
files, and run through `derive.cli.main` as a user would run them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.activations import ALLOWED_FUNCTIONS
from derive.cli import main
from derive.derivation import derive_shown
from derive.errors import DeriveError
from derive.spec import CHOICES, load_spec_file, spec_from_dict

from .helpers import spec_dicts, sweep

# User formulas built from the allowed functions (each in z), beside the fixed examples of helpers.
_UNARY = sorted(set(ALLOWED_FUNCTIONS) - {"Max", "Min", "max", "min", "Piecewise", "pi", "E", "Heaviside"})
_NOTATION_LETTERS = ["x", "s", "a", "u", "v", "q", "zeta", "phi"]


@st.composite
def user_formulas(draw) -> str:
    f = draw(st.sampled_from(_UNARY))
    g = draw(st.sampled_from(["z", "z/2", "z**2", "-z", "z + 1"]))
    shape = draw(st.sampled_from(["{f}({g})", "z*{f}({g})", "{f}({g}) + z", "Max(z, {f}({g}))",
                                  "Piecewise((z, z > 0), ({f}({g}), True))", "Heaviside(z)*z + {f}({g})"]))
    return shape.format(f=f, g=g)


@st.composite
def notations(draw) -> dict:
    out = {key: draw(st.sampled_from(values)) for key, values in CHOICES.items()
           if key in ("backward", "index_style", "relu_prime") and draw(st.booleans())}
    if draw(st.booleans()):
        pre, post = draw(st.lists(st.sampled_from(_NOTATION_LETTERS), min_size=2, max_size=2, unique=True))
        out.update(pre=pre, post=post)
    if draw(st.booleans()):
        out["output_layer"] = draw(st.sampled_from(["o", "out"]))
    if draw(st.booleans()):
        out["activation_names"] = draw(st.booleans())
    return out


@st.composite
def whole_grammar(draw) -> dict:
    """A spec of the whole documented grammar: every activation and loss, both conventions and layouts,
    every notation option, user formulas, widths 1-5, depths 1-4, display options."""
    data = draw(spec_dicts(max_depth=4, max_width=5))
    for layer in data["layer"][:-1]:
        if draw(st.integers(0, 3)) == 0:
            layer["activation"] = draw(user_formulas())
    data["notation"] = draw(notations())
    if draw(st.booleans()):
        data["display"] = {key: draw(st.booleans()) for key in ("chains", "paths", "unit", "dependency",
                                                                 "weight_column", "flattened_row", "index_form",
                                                                 "full_layers") if draw(st.booleans())}
    data["title"] = draw(st.sampled_from(["", "A net", r"<script>alert(1)</script> \input{x} $ & % # _"]))
    return data


def _toml(data: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict | list)]
    for layer in data["layer"]:
        lines += ["[[layer]]", *(f"{k} = {value(v)}" for k, v in layer.items())]
    for table in ("loss", "notation", "display"):
        if data.get(table):
            lines += [f"[{table}]", *(f"{k} = {value(v)}" for k, v in data[table].items())]
    return "\n".join(lines) + "\n"


def _accepted(text: str, path: Path) -> bool:
    path.write_text(text)
    try:
        load_spec_file(path)
    except DeriveError:
        return False
    return True


def run_every_command(path: Path, out: Path, capsys, commands=("show", "json", "latex", "numpy")) -> None:
    argvs = {"show": ["show", str(path)], "json": ["show", str(path), "--json"],
             "latex": ["latex", str(path), "-o", str(out / "h.tex")],
             "numpy": ["numpy", str(path), "-o", str(out / "grads.py")],
             "check": ["check", str(path)], "pdf": ["latex", str(path), "-o", str(out / "p.tex"), "--pdf"]}
    for name in commands:
        code = main(argvs[name])
        err = capsys.readouterr().err
        # success, a verification failure reported (1), or one line of refusal (2)
        assert code in (0, 1, 2), (name, code, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("derive: "), (name, err)


@settings(max_examples=sweep(5, 120))
@given(whole_grammar())
def test_every_accepted_spec_works_with_every_command(tmp_path_factory, capsys, data):
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "net.toml"
    if not _accepted(_toml(data), path):
        return  # refused by the parser, in one line (tests/test_spec.py); nothing to run
    run_every_command(path, folder, capsys)


@pytest.mark.slow
@settings(max_examples=40)
@given(data=whole_grammar())
def test_every_accepted_spec_checks_and_compiles(tmp_path_factory, capsys, tex, data):
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "net.toml"
    if _accepted(_toml(data), path):
        run_every_command(path, folder, capsys, commands=("check", "pdf"))


@pytest.fixture
def tex():
    from derive.render.latex import find_pdflatex

    try:
        find_pdflatex()
    except DeriveError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pdflatex is not installed")


# ------------------------------------------------------------------------------------------------
# The cases a new user tried (issue 19's table), one test each


def test_a_hidden_softmax_is_shown_and_typeset(capsys, tmp_path):
    for argv in (["show", "--input", "3", "--layers", "3:softmax,2:sigmoid", "--loss", "bce"],
                 ["latex", "--input", "3", "--layers", "3:softmax,2:sigmoid", "--loss", "bce",
                  "-o", str(tmp_path / "h.tex")]):
        assert main(argv) == 0, capsys.readouterr().err


def test_heaviside_has_the_derivative_zero_away_from_zero(capsys, tmp_path):
    spec = ["--input", "2", "--layers", "2:Heaviside(z)*z + z,1:identity"]
    assert main(["show", *spec]) == 0
    out = capsys.readouterr().out
    assert "DiracDelta" not in out
    assert main(["numpy", *spec, "-o", str(tmp_path / "step.py")]) == 0
    assert "DiracDelta" not in (tmp_path / "step.py").read_text()


@pytest.mark.parametrize("notation, blamed", [({"pre": "h", "post": "h"}, "post"), ({"pre": "W"}, "pre"),
                                              ({"post": "y"}, "post"), ({"pre": "L"}, "pre")])
def test_letters_that_collide_are_refused_by_name(notation, blamed):
    with pytest.raises(DeriveError) as err:
        spec_from_dict({"input": 2, "layer": [{"units": 2, "activation": "relu"}], "notation": notation})
    assert f"notation.{blamed}" in str(err.value)


def test_a_wide_network_is_shown_at_its_real_widths_from_a_small_instance():
    spec = spec_from_dict({"input": 512, "layer": [{"units": 256, "activation": "relu"}, {"units": 1}]})
    d = derive_shown(spec)
    assert d.sizes is not None and max(d.network.spec.widths) < 16  # never the 256 × 131072 Jacobian
    from derive.render.text import render_text

    text = render_text(d)
    assert "x₅₁₂" in text and "(256×131072, flattened weight)" in text and "256 relu" in text
    assert "x₈" not in text and "x₇" not in text  # no unit of the small instance passes for a real one


@pytest.mark.parametrize("name", ["numpy.py", "math.py", "sympy.py", "my-net.py"])
def test_module_names_that_import_cannot_take_or_that_shadow_a_library_are_refused(name, tmp_path, capsys):
    assert main(["numpy", "two-layer-relu", "-o", str(tmp_path / name)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not (tmp_path / name).exists()


def test_a_one_unit_softmax_is_refused():
    with pytest.raises(DeriveError, match="softmax over one unit"):
        spec_from_dict({"input": 2, "layer": [{"units": 1, "activation": "softmax"}], "loss": {"kind": "ce"}})


def test_overflow_in_a_users_formula_is_reported_as_the_users_formula():
    with pytest.raises(DeriveError, match="activation") as err:
        spec_from_dict({"input": 2, "layer": [{"units": 2, "activation": "z*1e400"}, {"units": 1}]})
    assert "1e400" in str(err.value) or "1.00E+400" in str(err.value)


def test_build_refuses_two_specs_that_would_write_one_folder(tmp_path, capsys):
    spec = tmp_path / "mine.toml"
    spec.write_text(Path(__file__).resolve().parents[1].joinpath("derive/presets/two-layer-relu.toml").read_text())
    assert main(["build", "two-layer-relu", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out" / "two-layer-relu").exists()


def test_presets_toml_starts_a_spec_that_loads(capsys, tmp_path):
    assert main(["presets", "--toml", "relu-softmax-label"]) == 0
    text = capsys.readouterr().out
    assert spec_from_dict(tomllib.loads(text)).name == "relu-softmax-label"


# ------------------------------------------------------------------------------------------------
# Files written together stay a matching set


@pytest.mark.slow
def test_an_interrupted_latex_pdf_leaves_the_old_pair_or_the_new_one(tmp_path, tex):
    """SIGINT at several moments of a real `derive latex --pdf`: afterwards the .tex and the .pdf are
    the old pair or the new pair, never one of each, and no temporary file is left behind."""
    out = tmp_path / "h.tex"
    base = [sys.executable, "-m", "derive"]
    subprocess.run([*base, "latex", "two-layer-relu", "-o", str(out), "--pdf"], check=True, capture_output=True)
    old = (out.read_bytes(), out.with_suffix(".pdf").read_bytes())
    seen = set()
    for delay in (0.3, 0.8, 1.5, 2.5, 4.0):
        proc = subprocess.Popen([*base, "latex", "softmax-ce-three-layer", "-o", str(out), "--pdf"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        pair = (out.read_bytes(), out.with_suffix(".pdf").read_bytes())
        if pair != old:
            assert b"softmax" in pair[0] and pair[1].startswith(b"%PDF")  # the new pair, whole
        if proc.returncode == 130:
            assert err.decode().count("\n") == 1 and "interrupted" in err.decode()
            seen.add("interrupted")
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        # back to the old pair for the next try
        subprocess.run([*base, "latex", "two-layer-relu", "-o", str(out), "--pdf"], check=True, capture_output=True)
        assert (out.read_bytes(), out.with_suffix(".pdf").read_bytes()) == old
    assert "interrupted" in seen  # at least one signal landed while derive was working


def test_an_mnist_sized_handout_compiles_within_the_margins(tex, tmp_path, capsys):
    """784 → 256 → 256 → 10: every wide block elided, I₂₅₆ ⊗ xᵀ's shown rows each with a non-zero column
    (more than amsmath's default ten columns), nothing past the margin."""
    from derive.render.latex import overfull_boxes, render_handout, run_pdflatex
    from derive.spec import spec_from_flags

    spec = spec_from_flags(784, "256:relu,256:relu,10:softmax", loss="ce")
    source = render_handout(derive_shown(spec))
    # the small instance's last units are written as the real ones, everywhere (the diagram too)
    assert "x_{784}" in source and "x_{9}" not in source and "h^{(1)}_{256}" in source
    _, log = run_pdflatex(source)
    assert max(overfull_boxes(log), default=0) <= 3.0
