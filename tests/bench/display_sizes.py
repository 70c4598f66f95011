"""What `derive show`, `--json` and `latex --pdf` cost as networks grow: seconds against the size of
what is displayed, and the targets of the size benchmark (issue 19).

Run by hand: python3 tests/bench/display_sizes.py [--quick]. Everything runs in this process, one
command after the other; pdflatex runs as a subprocess for the PDF rows. A network wider than a
displayed side is derived at a small instance (derive.sizes), so the time should stay flat once the
display stops growing.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from derive.derivation import derive_shown
from derive.render.json import render_json
from derive.render.latex import find_pdflatex
from derive.render.text import render_text
from derive.spec import spec_from_flags

TARGETS = {"show 512 → 256 → 1": 10.0, "latex --pdf 784 → 256 → 256 → 10": 30.0,
           "show, 6 layers sigmoid/tanh + softmax + CE, with an example": 5.0}


def timed(fn):
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def show(spec) -> tuple[float, int]:
    seconds, text = timed(lambda: render_text(derive_shown(spec)))
    return seconds, len(text.encode())


def json_(spec) -> tuple[float, int]:
    seconds, text = timed(lambda: render_json(derive_shown(spec)))
    return seconds, len(text.encode())


def deep_example_file() -> Path:
    """Six layers of sigmoid and tanh, softmax and cross-entropy, decimals in the example."""
    toml = Path(tempfile.mkdtemp()) / "deep.toml"
    widths = [2, 3, 3, 2, 3, 2, 3]
    acts = ["sigmoid", "tanh", "sigmoid", "tanh", "sigmoid", "softmax"]
    lines = [f"input = {widths[0]}"]
    for w, a in zip(widths[1:], acts):
        lines += ["[[layer]]", f"units = {w}", f'activation = "{a}"']
    lines += ["[loss]", 'kind = "ce"', "[example]", "x = [0.5, -1.5]", "y = [0, 1, 0]"]
    for l in range(1, len(widths)):
        rows = [[round(0.1 * ((3 * i + 2 * j + l) % 7 - 3), 1) for j in range(widths[l - 1])] for i in range(widths[l])]
        lines += [f"W{l} = {rows}", f"b{l} = {[0.1 * ((i + l) % 3 - 1) for i in range(widths[l])]}"]
    toml.write_text("\n".join(lines) + "\n")
    return toml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="widths up to 64, no PDF sweep")
    args = parser.parse_args()
    pdf = find_pdflatex() is not None

    print("show and --json against width (x → w relu → w relu → 1 identity), in this process (after the first,")
    print("with what SymPy and derive cache warm):")
    print(f"{'width':>6} {'show s':>8} {'show KB':>8} {'json s':>8} {'json KB':>8} {'s per show KB':>14}")
    widths = [2, 4, 6, 8, 16, 64] + ([] if args.quick else [256, 784])
    for w in widths:
        spec = spec_from_flags(w, f"{w}:relu,{w}:relu,1:identity", loss="half_sse")
        s_show, b_show = show(spec)
        s_json, b_json = json_(spec)
        print(f"{w:>6} {s_show:>8.2f} {b_show / 1e3:>8.1f} {s_json:>8.2f} {b_json / 1e3:>8.1f} "
              f"{s_show / (b_show / 1e3):>14.4f}")

    print("\ntargets, each a fresh `derive` process as a user runs it (imports and all):")
    deep = deep_example_file()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [("show 512 → 256 → 1", ["show", "--input", "512", "--layers", "256:relu,1:identity"])]
        if pdf:
            rows.append(("latex --pdf 784 → 256 → 256 → 10",
                         ["latex", "--input", "784", "--layers", "256:relu,256:relu,10:softmax", "--loss", "ce",
                          "-o", str(Path(tmp) / "mnist.tex"), "--pdf"]))
        rows.append(("show, 6 layers sigmoid/tanh + softmax + CE, with an example", ["show", str(deep)]))
        for name, argv in rows:
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "derive", *argv], capture_output=True, check=True).stdout
            seconds = time.perf_counter() - start
            target = TARGETS[name]
            print(f"  {name:<62} {seconds:>6.2f} s  (target {target:.0f} s: {seconds / target:.2f} of it)  "
                  f"{len(out) / 1e3:.1f} KB printed")


if __name__ == "__main__":
    main()
