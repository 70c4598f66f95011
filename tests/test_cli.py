"""The CLI called in-process, as a user would call it: output, exit codes, one-line errors."""

import os
import re
import subprocess
import sys

import pytest

from derive.cli import main
from derive.verify import torch_available


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_show_preset_prints_every_section(capsys):
    code, out, err = run(["show", "two-layer-relu"], capsys)
    assert code == 0 and err == ""
    headings = ("1. Forward pass", "2. Loss", "3. Backward pass", "Layer 2 (output)", "Layer 1", "4. Any layer",
                "Summary", "Worked example")
    assert [out.index(h) for h in headings] == sorted(out.index(h) for h in headings)  # present, in this order
    assert "✓" in out and "✗" not in out
    assert "δ⁽¹⁾ = (W⁽²⁾ᵀ δ⁽²⁾) ⊙ relu′(z⁽¹⁾)" in out
    assert "∂L/∂W⁽¹⁾ = δ⁽¹⁾ xᵀ" in out


def test_show_quick_flags(capsys):
    code, out, _ = run(["show", "--input", "2", "--layers", "2:relu,1:identity", "--loss", "half_sse"], capsys)
    assert code == 0 and "δ⁽²⁾ = ŷ − y" in out


def test_show_row_convention_and_user_activation(capsys):
    code, out, _ = run(["show", "--input", "2", "--layers", "3:z/(1 + exp(-z)),1:sigmoid", "--loss", "bce",
                        "--convention", "row"], capsys)
    assert code == 0
    assert "f′(z)" in out and "(δ⁽²⁾ W⁽²⁾ᵀ) ⊙ f′(z⁽¹⁾)" in out


def test_layers_flag_splits_only_at_top_level_commas(capsys):
    code, out, err = run(["show", "--input", "2", "--layers",
                          "2:Max(z, z/4),2:Piecewise((z, z >= 0), (exp(z) - 1, True)),1:identity"], capsys)
    assert code == 0 and err == ""
    assert "2 f(z) = max(z, z/4) → 2 g(z) = {z if z ≥ 0; exp(z) − 1 otherwise} → 1 identity" in out
    assert "g′(z) = {1 if z ≥ 0; exp(z) otherwise}" in out and "h⁽²⁾ = g(z⁽²⁾)" in out
    code, _, err = run(["show", "--input", "2", "--layers", "2:Max(z, z/4,1:identity"], capsys)
    assert code == 2 and "does not parse" in err and len(err.strip().splitlines()) == 1


def test_wide_matrices_are_elided(capsys):
    code, out, _ = run(["show", "--input", "12", "--layers", "10:relu,1:identity"], capsys)
    assert code == 0
    assert "⋯" in out and "⋮" in out
    assert max(len(line) for line in out.splitlines()) < 400


@pytest.mark.parametrize("toml, fragment", [
    ("input = 2\n[[layer]]\nunits = 0\n", "layer 1.units: must be at least 1"),
    ("input = 2\n[[layer]]\nunits = 2\nactivaton = 'relu'\n", "did you mean 'activation'"),
    ("input = 2\n[[layer]\n", "invalid TOML"),
    ("name = 'a b'\ninput = 2\n[[layer]]\nunits = 2\n", "is not a name"),
    ("input = 2\n[[layer]]\nunits = 2\nactivation = 'swish'\n", "valid: identity, relu"),
    ("input = 2\n[[layer]]\nunits = 2\nactivation = 'z + __import__(\"os\")'\n", "uses '__import__'"),
    ("input = 2\n[[layer]]\nunits = 2\n[loss]\nkind = 'hinge'\n", "unknown loss"),
])
def test_bad_specs_exit_2_with_one_line(tmp_path, capsys, toml, fragment):
    path = tmp_path / "spec.toml"
    path.write_text(toml)
    code, out, err = run(["show", str(path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err and str(path) in err
    assert "Traceback" not in err


def test_missing_file_and_unknown_preset(capsys, tmp_path):
    code, _, err = run(["show", str(tmp_path / "none.toml")], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["show", "not-a-preset"], capsys)
    assert code == 2 and "presets:" in err


def test_usage_errors_are_one_line(capsys):
    code, _, err = run(["shw"], capsys)
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(["show"], capsys)
    assert code == 2 and "SPEC" in err
    code, _, err = run(["show", "two-layer-relu", "--input", "3"], capsys)
    assert code == 2 and "not both" in err


def test_numpy_writes_a_module(tmp_path, capsys):
    out = tmp_path / "grad.py"
    code, stdout, _ = run(["numpy", "two-layer-relu", "-o", str(out)], capsys)
    assert code == 0 and out.exists() and str(out) in stdout
    assert "def loss_and_grads" in out.read_text()


def test_unwritable_output_leaves_nothing(tmp_path, capsys):
    target = tmp_path / "missing-dir" / "grad.py"
    code, _, err = run(["numpy", "two-layer-relu", "-o", str(target)], capsys)
    assert code == 2 and "folder does not exist" in err and not target.exists()
    readonly = tmp_path / "ro"
    readonly.mkdir()
    os.chmod(readonly, 0o500)
    try:
        if os.access(readonly, os.W_OK):  # root ignores permissions: a directory as target instead
            code, _, err = run(["numpy", "two-layer-relu", "-o", str(readonly)], capsys)
            assert code == 2 and ("is a directory" in err or "must end in .py" in err)
        else:
            code, _, err = run(["numpy", "two-layer-relu", "-o", str(readonly / "g.py")], capsys)
            assert code == 2 and "cannot write" in err
        assert list(readonly.iterdir()) == []
    finally:
        os.chmod(readonly, 0o700)


def test_bad_spec_writes_no_file(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text("input = 0\n[[layer]]\nunits = 1\n")
    out = tmp_path / "grad.py"
    code, _, _ = run(["numpy", str(spec), "-o", str(out)], capsys)
    assert code == 2 and not out.exists() and list(tmp_path.iterdir()) == [spec]


def test_check_reports_a_table(capsys):
    """A row per reference, point and parameter, each saying where it was taken; the bar is stated."""
    code, out, _ = run(["check", "two-layer-relu"], capsys)
    assert code == 0 and out.splitlines()[-1] == "all gradients agree"
    assert "|error| ≤ 1e-07 + 1e-05·|reference|" in out.splitlines()[0]
    rows = [line.split() for line in out.splitlines() if line.startswith(("finite differences", "torch autograd"))]
    seen = {(" ".join(row[:-4]), row[-4]) for row in rows if row[-1] == "ok"}
    references = ["finite differences", *(["torch autograd"] if torch_available() else [])]
    expected = {(f"{r} {at}", p) for r in references for at in ("one example", "batch of 3")
                for p in ("W1", "b1", "W2", "b2")}
    assert len(rows) == len(seen) == len(expected) and seen == expected


def test_check_of_a_formula_with_no_real_values_is_bad_input(capsys):
    code, out, err = run(["check", "--input", "2", "--layers", "2:sqrt(-1 - z**2)", "--loss", "sse"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "cannot be checked numerically" in err and "Traceback" not in err


WRONG_B1 = '''

_right = loss_and_grads


def loss_and_grads(params, x, y):
    value, grads = _right(params, x, y)
    return value, {**grads, "b1": grads["b1"] * 1.001 + 1e-3}
'''


def test_check_exits_1_and_names_the_gradient_when_the_module_is_wrong(capsys, monkeypatch):
    import derive.render.numpy as numpy_renderer

    right = numpy_renderer.numpy_source
    monkeypatch.setattr(numpy_renderer, "numpy_source", lambda spec: right(spec) + WRONG_B1)
    code, out, _ = run(["check", "two-layer-relu"], capsys)
    assert code == 1 and "GRADIENTS DISAGREE" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("finite differences", "torch autograd"))]
    assert rows and all((row[-1] == "MISMATCH") == (row[-4] == "b1") for row in rows)


CRASHING = '''

def loss_and_grads(params, x, y):
    return 1 / 0
'''


@pytest.mark.parametrize(("appended", "expected"), [
    (CRASHING, r"the generated two_layer_relu\.py raised ZeroDivisionError: division by zero at line \d+ "
               r"\(loss_and_grads: return 1 / 0\); this is a bug in derive"),
    ("\ndef broken(:\n", r"the generated two_layer_relu\.py does not compile: SyntaxError: .* at line \d+; "
                         r"this is a bug in derive"),
])
def test_check_of_generated_code_that_fails_is_one_line_and_exit_1(capsys, monkeypatch, appended, expected):
    """Not a traceback, and not exit 2: the spec was fine, the code derive wrote was not."""
    import derive.render.numpy as numpy_renderer

    right = numpy_renderer.numpy_source
    monkeypatch.setattr(numpy_renderer, "numpy_source", lambda spec: right(spec) + appended)
    code, out, err = run(["check", "two-layer-relu"], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert re.fullmatch(r"derive: " + expected + "\n", err), err


def test_check_names_its_own_failure_apart_from_the_generated_code(capsys, monkeypatch):
    import derive.verify as verify

    def broken_reference(*args, **kwargs):
        raise KeyError("W9")

    monkeypatch.setattr(verify, "finite_differences", broken_reference)
    code, out, err = run(["check", "two-layer-relu"], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1
    expected = r"derive: derive check raised KeyError: 'W9' at test_cli\.py line \d+; this is a bug in derive\n"
    assert re.fullmatch(expected, err), err


@pytest.mark.parametrize(("name", "suggestion"), [
    ("bad name.py", "bad_name.py"), ("my-grads.py", "my_grads.py"), ("1x.py", "_1x.py"), ("class.py", "class_.py"),
])
def test_numpy_refuses_a_file_name_import_cannot_take(tmp_path, capsys, name, suggestion):
    target = tmp_path / name
    code, out, err = run(["numpy", "two-layer-relu", "-o", str(target)], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and f"({suggestion}, say)" in err
    assert err.startswith(f"derive: {target}: ") and list(tmp_path.iterdir()) == []
    # the suggested name is one Python imports
    code, _, _ = run(["numpy", "two-layer-relu", "-o", str(tmp_path / suggestion)], capsys)
    assert code == 0
    sys.path.insert(0, str(tmp_path))
    try:
        module = __import__(suggestion.removesuffix(".py"))
        assert callable(module.loss_and_grads)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(suggestion.removesuffix(".py"), None)


def test_console_script_runs_as_a_process():
    result = subprocess.run([sys.executable, "-m", "derive", "presets"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and "two-layer-relu" in result.stdout
    result = subprocess.run([sys.executable, "-m", "derive", "show", "nope"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_progress_shows_on_a_terminal_only():
    import io

    from derive.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(stream)
        p("deriving two-layer-relu")
        p.clear()
    assert "deriving two-layer-relu…" in tty.getvalue() and tty.getvalue().endswith("\r\033[K")
    assert pipe.getvalue() == ""
