"""The same spec gives byte-identical files, whatever Python's hash seed (set iteration order)."""

import os
import subprocess
import sys

import pytest


def _run(args, seed, tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    out = tmp_path / f"{args[0]}_{seed}"  # a module name import can take
    cmd = [sys.executable, "-m", "derive", *args]
    if args[0] in ("numpy", "latex"):
        cmd += ["-o", str(out) + (".py" if args[0] == "numpy" else ".tex")]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return (out.with_suffix(".py") if args[0] == "numpy" else out.with_suffix(".tex")).read_bytes()
    return subprocess.run(cmd, env=env, check=True, capture_output=True).stdout


@pytest.mark.parametrize("args", [
    ["numpy", "relu-softmax-label"],
    pytest.param(["numpy", "sigmoid-4321-bce"], marks=pytest.mark.slow),
    pytest.param(["show", "softmax-ce-three-layer", "--json"], marks=pytest.mark.slow),
    ["show", "sigmoid-4321-bce"],
    pytest.param(["latex", "relu-softmax-label"], marks=pytest.mark.slow),
])
def test_outputs_do_not_depend_on_the_hash_seed(args, tmp_path):
    assert _run(args, 1, tmp_path) == _run(args, 2, tmp_path) == _run(args, 3, tmp_path)
