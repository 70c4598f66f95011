"""LaTeX handouts and exercise sheets from Jinja2 templates; optional compilation with pdflatex.

Expressions come from `NotationLatexPrinter`; this module lays matrices out (eliding large ones),
places the nodes of the network diagram, escapes user text, and runs pdflatex reproducibly.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sympy as sp

from derive.derivation import Derivation, derive_shown
from derive.errors import DeriveError
from derive.files import write_set
from derive.render.environment import latex_environment
from derive.render.printers import NotationLatexPrinter, eliding
from derive.render.view import Printers, build_view, display_for, elided, picked, position
from derive.spec import NetworkSpec

MAX_SIDE = 6        # rows or columns of a matrix shown before eliding
MAX_CELL = 34       # visible characters of one cell; longer entries are listed, not gridded
MAX_ROW = 78        # visible characters of one matrix row
MAX_ENTRY = 700     # visible characters of one listed entry before it is summarised
DIAGRAM_NODES = 5   # units drawn per layer before the rest are elided with ⋮

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
    "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}",
}
_UNICODE_TEX = {"−": "$-$", "→": r"$\to$", "×": r"$\times$", "Σ": r"$\Sigma$", "½": r"$\frac12$", "²": r"$^2$",
                "≤": r"$\le$", "ŷ": r"$\hat y$", "∂": r"$\partial$", "σ": r"$\sigma$", "⊙": r"$\odot$",
                "ᵀ": r"$^\top$", "ᵢ": r"$_i$", "ⱼ": r"$_j$", "′": "'", "“": "``", "”": "''", "’": "'", "‘": "`",
                "–": "--", "—": "---"}


def escape_tex(text: str) -> str:
    """User or prose text made safe for TeX: specials escaped, unknown characters spelled out."""
    out = []
    for ch in text:
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch in _UNICODE_TEX:
            out.append(_UNICODE_TEX[ch])
        elif ord(ch) < 128 or (unicodedata.category(ch).startswith("L") and 0xC0 <= ord(ch) <= 0xFF):
            out.append(ch)
        elif "GREEK" in unicodedata.name(ch, ""):
            name = unicodedata.name(ch).split()[-1].lower()
            upper = "CAPITAL" in unicodedata.name(ch)
            out.append(rf"$\{name.capitalize() if upper else name}$")
        else:
            out.append("?")
    return "".join(out)


def visible_length(tex: str) -> int:
    """A rough count of the characters TeX will show (commands and braces removed)."""
    text = re.sub(r"\\(left|right|operatorname|mathbf|boldsymbol|hat|mathbb)\b", "", tex)
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", text)
    text = re.sub(r"\\[A-Za-z]+", "x", text)
    text = re.sub(r"[{}^_ ]", "", text)
    return len(text)


LINE = 64  # visible characters of one line of a broken entry


def broken(expr: sp.Expr, printer: NotationLatexPrinter, width: int = LINE) -> str:
    """A long entry over several aligned lines: broken between the terms of a sum, and inside the
    bracketed sum of a product; what still does not fit is scaled by \\fitmath."""
    lines = _lines(expr, printer, width)
    if len(lines) == 1:
        return lines[0]
    return r"\begin{aligned}[t] & " + r" \\ & \quad ".join(lines) + r"\end{aligned}"


def _lines(expr: sp.Expr, printer: NotationLatexPrinter, width: int) -> list[str]:
    tex = printer.doprint(expr)
    if visible_length(tex) <= width:
        return [tex]
    if isinstance(expr, sp.Add):
        lines, current = [], ""
        for k, term in enumerate(expr.args):
            negative = term.could_extract_minus_sign()
            text = printer.doprint(-term if negative else term)
            if isinstance(-term if negative else term, sp.Add):
                text = rf"\left({text}\right)"
            piece = (" - " if negative else " + " if k else "") + text
            if visible_length(piece) > width and not isinstance(-term if negative else term, sp.Add):
                if current:  # a long term of its own: broken in turn, on lines of its own
                    lines.append(current)
                sub = _lines(-term if negative else term, printer, width)
                sub[0] = piece[: len(piece) - len(text)].strip() + " " + sub[0]
                lines += sub[:-1]
                current = sub[-1]
            elif current and visible_length(current + piece) > width:
                lines.append(current)
                current = piece.strip()
            else:
                current += piece
        lines.append(current)
        return lines
    if isinstance(expr, sp.Mul):
        sums = [f for f in expr.args if isinstance(f, sp.Add)]
        if sums:
            inner = max(sums, key=lambda f: visible_length(printer.doprint(f)))
            rest = sp.Mul(*[f for f in expr.args if f is not inner], evaluate=False)
            head = "" if rest == 1 else printer.doprint(rest) + " "
            body = _lines(inner, printer, width)
            body[0] = head + r"\Bigl(" + body[0]
            body[-1] += r"\Bigr)"
            return body
    return [tex]


def latex_matrix(m: sp.MatrixBase, printer: NotationLatexPrinter, max_side: int = MAX_SIDE,
                 shape: tuple[int, int] | None = None) -> dict[str, Any]:
    """A bmatrix with ⋯ ⋮ ⋱ beyond `max_side`, or, when entries are long, a list of the entries that
    are not 0 and a count of those that are. `shape`: the real shape a small instance stands for."""
    real_rows, real_cols = shape if shape is not None and tuple(shape) != m.shape else (None, None)
    rows, cols = elided(m, max_side)
    with eliding(printer):
        cells = {(i, j): printer.doprint(m[i, j]) for i in rows if i is not None for j in cols if j is not None}
    partial = m.rows > max_side or m.cols > max_side
    widest_row = max(sum(visible_length(cells[(i, j)]) + 2 for j in cols if j is not None)
                     for i in rows if i is not None)
    cell_limit = MAX_ROW if m.cols == 1 else MAX_CELL  # a column holds wider entries than a grid
    if max(visible_length(c) for c in cells.values()) <= cell_limit and widest_row <= MAX_ROW:
        lines = []
        for i in rows:
            parts = []
            for j in cols:
                if i is None:
                    parts.append(r"\ddots" if j is None else r"\vdots")
                else:
                    parts.append(r"\cdots" if j is None else cells[(i, j)])
            lines.append(" & ".join(parts))
        grid = r"\begin{bmatrix}" + r" \\ ".join(lines) + r"\end{bmatrix}"
        if any(r"\frac" in c for c in cells.values()):  # fractions at full size, rows spaced to hold them
            grid = r"{\renewcommand{\arraystretch}{2.1}" + grid.replace(" & ", r" & \displaystyle ").replace(
                r"\begin{bmatrix}", r"\begin{bmatrix}\displaystyle ").replace(r" \\ ", r" \\ \displaystyle ") + "}"
        return {"grid": grid, "entries": [], "elided": partial, "zeros": 0}
    entries, zeros = [], 0
    for i in rows:
        for j in cols:
            if i is None or j is None:
                continue
            if cells[(i, j)] == "0":  # a diagonal's off-diagonal places: counted, not listed
                zeros += 1
                continue
            tex = broken(m[i, j], printer)
            if visible_length(cells[(i, j)]) > MAX_ENTRY:
                terms = len(sp.Add.make_args(sp.expand(m[i, j]))) if m[i, j].count_ops() < 4000 else None
                tex = r"\text{(" + (f"{terms} terms" if terms else "a long expression") + \
                      r" when expanded; see \texttt{derive show --json})}"
            r, c = position(i, m.rows, real_rows), position(j, m.cols, real_cols)
            index = f"{r}" if m.cols == 1 else f"{c}" if m.rows == 1 else f"{r},{c}"
            entries.append({"index": index, "tex": tex})
    return {"grid": "", "entries": entries, "elided": partial, "zeros": zeros}


def diagram(d: Derivation, latex: NotationLatexPrinter) -> dict[str, Any]:
    """Node positions for the TikZ picture: a column per layer, wide layers drawn with ⋮."""
    display = display_for(d)
    net = d.network
    columns = [("x", net.x)] + [(f"h{layer.index}", layer.h) for layer in net.layers]
    layers = []
    for c, (block, symbols) in enumerate(columns):
        n = len(symbols)
        shown = picked(n, DIAGRAM_NODES)
        nodes = []
        for row, index in enumerate(shown):
            y = (len(shown) - 1) / 2 - row
            at = f"({4.2 * c:.2f},{1.3 * y:.2f})"
            if index is None:
                nodes.append({"id": f"g{c}", "at": at, "y": 1.3 * y, "label": r"\vdots", "gap": True})
            else:
                symbol = d.sizes.symbol(symbols[index]) if d.sizes is not None else symbols[index]  # x₉ → x₇₈₄
                nodes.append({"id": f"n{c}_{index}", "ref": f"(n{c}_{index})", "at": at, "y": 1.3 * y,
                              "label": latex.doprint(symbol), "gap": False})
        name = display.block(block if c else "x", latex=True)
        if c == len(columns) - 1:
            name = display.block("yhat", latex=True)
        caption = "input" if c == 0 else f"layer {display.label(c)}"
        act = None if c == 0 else net.layers[c - 1].activation
        custom = act is not None and act.user_defined  # written f, g as in the equations
        activation = "" if act is None else display.function(c, latex=True) if custom else act.name
        layers.append({"nodes": nodes, "name": name, "caption": caption, "activation": activation,
                       "activation_math": custom, "units": n, "x": 4.2 * c})
    top = max(max(n["y"] for n in layer["nodes"]) for layer in layers) + 1.0
    for layer in layers:
        layer["at"] = f"({layer['x']:.2f},{top:.2f})"
    edges = []
    for c in range(1, len(layers)):
        W = net.layers[c - 1].W
        small = len(layers[c - 1]["nodes"]) * len(layers[c]["nodes"]) <= 4  # more labels collide at crossings
        for a in layers[c - 1]["nodes"]:
            for b in layers[c]["nodes"]:
                if a["gap"] or b["gap"]:
                    continue
                label = ""
                if small:
                    i = int(b["id"].split("_")[1])
                    j = int(a["id"].split("_")[1])
                    entry = W[i, j] if d.spec.convention == "column" else W[j, i]
                    label = latex.doprint(entry)
                # Labels alternate ends by target unit, so that crossing edges keep theirs apart.
                pos = 0.3 if int(b["id"].split("_")[1]) % 2 == 0 else 0.7
                edges.append({"a": a["ref"], "b": b["ref"], "label": label, "pos": pos})
    weights = [{"at": f"({4.2 * c - 2.1:.2f},{top:.2f})", "name": display.block(f"W{c}", latex=True)}
               for c in range(1, len(layers))]
    return {"layers": layers, "edges": edges, "weights": weights}


def _escape_lines(node: Any) -> None:
    """Every line's rule and reason, and every Jacobian's note, made safe for TeX (they are prose)."""
    if isinstance(node, dict):
        if "check" in node and "rule" in node:
            node["reason_tex"] = escape_tex(node["reason"]) if node.get("reason") else ""
            node["rule_tex"] = escape_tex(node["rule"][:1].upper() + node["rule"][1:]) if node.get("rule") else ""
        if node.get("kind") == "jacobian":
            reason = node["reason"]
            node["reason_tex"] = escape_tex(reason[:1].upper() + reason[1:]) if reason else ""
            node["structure_tex"] = escape_tex(node["structure_text"])
        for value in node.values():
            _escape_lines(value)
    elif isinstance(node, list):
        for value in node:
            _escape_lines(value)


def _entry(printer: NotationLatexPrinter, e: sp.Basic) -> str:
    with eliding(printer):
        return printer.doprint(e)


def handout_view(d: Derivation, max_side: int = MAX_SIDE) -> dict[str, Any]:
    from derive.render.view import _generic_display

    display = display_for(d)
    printer = NotationLatexPrinter(display)
    inline = NotationLatexPrinter(display)
    inline.inline_partials = True
    p = Printers(printer.doprint, lambda m, shape=None: latex_matrix(m, printer, max_side, shape), display,
                 latex=True, max_side=max_side, fits=lambda m: bool(latex_matrix(m, printer, max_side)["grid"]),
                 inline=lambda m, shape=None: latex_matrix(m, inline, max_side, shape),
                 entry=lambda e: _entry(printer, e))
    view = build_view(d, p, lambda disp: NotationLatexPrinter(disp).doprint)
    _escape_lines(view)
    view["title_tex"] = escape_tex(d.spec.title or d.spec.name)
    view["layout"] = escape_tex(view["layout"])
    view["name_tex"] = escape_tex(d.spec.name)
    view["description_tex"] = escape_tex(d.spec.description)
    view["loss_text_tex"] = escape_tex(d.network.loss.description.split(",")[0]).replace(" K ", " $K$ ") + (
        f" ($K = {d.spec.widths[-1]}$)" if "(1/K)" in d.network.loss.description else "")
    view["convention_tex"] = f"{d.spec.convention} vectors, ${view['affine']}$"
    view["layer_sentence"] = _layer_sentence(view["layers"])
    # A formula of the user's is displayed after the sentence, where it may be as long as it likes.
    view["custom_formulas"] = list(dict.fromkeys(layer["activation"] for layer in view["layers"] if layer["custom"]))
    view["diagram"] = diagram(d, printer)
    # side by side, z and h of a unit fit a line only while they are short (a user's long formula is not)
    small = len(view["forward"]) <= 4 and len(view["forward"][0]["z_components"]) <= 4 and all(
        visible_length(z[1]) + visible_length(h[1]) <= 90 for f in view["forward"]
        for z, h in zip(f["z_components"], f["h_components"]))
    # z and h of each unit side by side: z⁽ˡ⁾ᵢ = … & h⁽ˡ⁾ᵢ = σ(z⁽ˡ⁾ᵢ)
    # Beyond two layers, the first layer and the output in components: the layers between are alike.
    shown = view["forward"] if len(view["forward"]) <= 2 else [view["forward"][0], view["forward"][-1]]
    view["components"] = [pair for f in shown for pair in zip(f["z_components"], f["h_components"])] \
        if small else []
    view["components_elided"] = len(shown) < len(view["forward"])
    view["delta_name"] = _generic_display(d).block("delta1", latex=True)
    for m in view["legend"]:
        m["text_tex"] = escape_tex(m["text"])
    if view["index"]:
        for step in view["index"]["steps"] + ([view["index"]["output"]] if view["index"]["output"] else []):
            step["lines"] = _chained(step["lhs"], step["forms"])
        sizes = sorted({s["check"]["detail"].removeprefix("at sizes ") for s in view["index"]["steps"]
                        if s["check"]["detail"].startswith("at sizes ")})
        view["index"]["sizes_tex"] = "widths " + escape_tex(", ".join(sizes))
    view["kinks"] = view["example"]["kinks"] if view["example"] else []
    view["warnings_tex"] = [escape_tex(w) for w in view["warnings"]]
    if view["example"] and d.example.decimal_from:
        view["example"]["previous"] = display.label(d.example.decimal_from - 1) if d.example.decimal_from > 1 else "0"
    return view


def _chained(lhs: str, forms: list[str], width: int = 80) -> list[str]:
    """lhs = f₁ = f₂ = …, the forms grouped into lines that fit (each line starts with =)."""
    lines, current, used = [], [], visible_length(lhs)
    for f in forms:
        n = visible_length(f) + 3
        if current and used + n > width:
            lines.append(" = ".join(current))
            current, used = [], visible_length(lhs)
        current.append(f)
        used += n
    if current:
        lines.append(" = ".join(current))
    return lines


def _layer_sentence(layers: list[dict[str, Any]]) -> str:
    parts = []
    for layer in layers:
        units = f"{layer['units']} unit{'s' if layer['units'] != 1 else ''}"
        act = layer["activation"]
        act = f"activation ${layer['function']}$" if layer["custom"] else rf"activation \texttt{{{escape_tex(act)}}}"
        parts.append(f"a layer of {units} with {act}" + ("" if layer["bias"] else " and no bias"))
    return ", then ".join(parts)


# ------------------------------------------------------------------------------------------------
# Files


def render_handout(d: Derivation, max_side: int = MAX_SIDE) -> str:
    return latex_environment().get_template("handout.tex.j2").render(**handout_view(d, max_side))


def render_exercise(d: Derivation, variant: int | None, max_side: int = MAX_SIDE) -> tuple[str, str]:
    # every layer in full: a question asks for each explicit Jacobian, and its answer shows it
    full = dataclasses.replace(d.spec, display=dataclasses.replace(d.spec.display, full_layers=True))
    view = handout_view(dataclasses.replace(d, spec=full), max_side)
    view["variant"] = variant
    env = latex_environment()
    return env.get_template("exercise.tex.j2").render(**view), env.get_template("solution.tex.j2").render(**view)


def write_handouts(spec: NetworkSpec, output: Path, pdf: bool = False, exercise: bool = False,
                   variant: int | None = None, max_side: int = MAX_SIDE,
                   progress: Callable[[str], None] = lambda message: None) -> list[Path]:
    from derive.exercise import variant_spec

    if pdf:
        find_pdflatex()  # fail before writing anything
    progress(f"deriving {spec.name}")
    if exercise:
        chosen = variant_spec(spec, variant) if variant is not None else spec
        sheet, solution = render_exercise(derive_shown(chosen, max_side), variant, max_side)
        solution_path = output.with_name(output.stem + "-solution.tex")
        files = [(output, sheet), (solution_path, solution)]
    else:
        files = [(output, render_handout(derive_shown(spec, max_side), max_side))]
    # Everything is made before anything is written: a LaTeX failure or an interrupt leaves the old
    # files, and the .tex and .pdf are replaced together.
    outputs: dict[Path, str | bytes] = {}
    for path, text in files:
        outputs[path] = text
        if pdf:
            progress(f"compiling {path.with_suffix('.pdf').name}")
            outputs[path.with_suffix(".pdf")] = run_pdflatex(text, str(path))[0]
    return write_set(outputs)


def find_pdflatex() -> str:
    exe = shutil.which("pdflatex")
    if exe is None:
        raise DeriveError("pdflatex not found; install TeX Live (Debian, with --no-install-recommends: "
                          "texlive-latex-base texlive-latex-recommended texlive-pictures lmodern)", "--pdf")
    return exe


def run_pdflatex(source: str, where: str = "document") -> tuple[bytes, str]:
    """Compile LaTeX source in a scratch folder: the PDF's bytes and the log. Reruns while TeX asks."""
    exe = find_pdflatex()
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1", "max_print_line": "1000"}
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as work:
        (Path(work) / "doc.tex").write_text(source, encoding="utf-8")
        log = ""
        for _ in range(3):
            result = subprocess.run(
                [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
                cwd=work, env=env, capture_output=True, text=True, errors="replace", check=False)
            log_path = Path(work) / "doc.log"
            log = log_path.read_text(errors="replace") if log_path.exists() else result.stdout
            if result.returncode != 0:
                raise DeriveError(f"LaTeX failed: {first_error(log)}", where)
            if "Rerun to get" not in log and "Rerun LaTeX" not in log:  # longtable settles its widths so
                break
        return (Path(work) / "doc.pdf").read_bytes(), log


def first_error(log: str) -> str:
    """The first `! ...` message of a TeX log, with the line it names."""
    lines = log.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("!"):
            where = next((m.group(1) for m in (re.match(r"l\.(\d+)", x) for x in lines[k:k + 30]) if m), None)
            return line[1:].strip() + (f" (line {where})" if where else "")
    return "pdflatex exited with an error and no message"


def overfull_boxes(log: str) -> list[float]:
    """Widths, in points, of the overfull boxes a log reports."""
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
