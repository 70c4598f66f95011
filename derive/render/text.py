"""The derivation in the terminal: SymPy expressions in Unicode, matrices as aligned grids."""

from __future__ import annotations

import sympy as sp

from derive.derivation import Derivation
from derive.render.environment import text_environment
from derive.render.printers import TextPrinter, eliding
from derive.render.view import Printers, build_view, display_for, elided, position

MAX_SIDE = 6       # rows or columns shown before eliding with ⋮ / ⋯
MAX_CELL = 36      # wider entries are listed one per line instead of in a grid
MAX_ENTRY = 320    # characters of one entry before it is cut (the JSON has it whole)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ENTRY else text[:MAX_ENTRY] + f" … ({len(text) - MAX_ENTRY} more characters)"


def grid_fits(m: sp.MatrixBase, printer: TextPrinter, max_side: int = MAX_SIDE) -> bool:
    rows, cols = elided(m, max_side)
    with eliding(printer):
        return all(len(_cut(printer.doprint(m[i, j]))) <= MAX_CELL for i in rows if i is not None
                   for j in cols if j is not None)


def text_matrix(m: sp.MatrixBase, printer: TextPrinter, max_side: int = MAX_SIDE,
                shape: tuple[int, int] | None = None) -> list[str]:
    """A grid with ⋯ ⋮ ⋱ beyond `max_side`, or one entry a line; `shape`: the real shape a small
    instance stands for (its last row and column are the real last ones)."""
    real_rows, real_cols = shape if shape is not None and tuple(shape) != m.shape else (None, None)
    rows, cols = elided(m, max_side)
    with eliding(printer):
        cells = {(i, j): _cut(printer.doprint(m[i, j])) for i in rows if i is not None for j in cols if j is not None}
    if any(len(c) > MAX_CELL for c in cells.values()):
        # One entry per line; zeros (a diagonal's 12 of 16, say) are left out and counted at the end.
        lines = []
        zeros = 0
        for i in rows:
            if i is None:
                lines.append("  ⋮")
                continue
            for j in cols:
                if j is None:
                    lines.append(f"  [{position(i, m.rows, real_rows)},…]  ⋯")
                elif cells[(i, j)] == "0":
                    zeros += 1
                else:
                    lines.append(f"  [{position(i, m.rows, real_rows)},{position(j, m.cols, real_cols)}]"
                                 f"  {cells[(i, j)]}")
        if zeros:
            partial = len(cells) < m.rows * m.cols
            what = "entries shown" if partial else "entry" if zeros == 1 else f"{zeros} entries"
            lines.append(f"  the other {what} {'is' if what == 'entry' else 'are'} 0")
        return lines
    width = [max((len(cells[(i, j)]) if i is not None else 1) for i in rows) if j is not None else 1 for j in cols]
    grid = []
    for i in rows:
        parts = []
        for k, j in enumerate(cols):
            if i is None:
                parts.append("⋮".center(width[k]) if j is not None else "⋱")
            else:
                parts.append(cells[(i, j)].rjust(width[k]) if j is not None else "⋯")
        grid.append("  ".join(parts))
    if len(grid) == 1:
        return [f"[ {grid[0]} ]"]
    brackets = [("⎡", "⎤")] + [("⎢", "⎥")] * (len(grid) - 2) + [("⎣", "⎦")]
    return [f"{left} {row} {right}" for (left, right), row in zip(brackets, grid)]


def _entry(printer: TextPrinter, e: sp.Basic) -> str:
    with eliding(printer):
        return printer.doprint(e)


def render_text(derivation: Derivation, max_side: int = MAX_SIDE) -> str:
    display = display_for(derivation)
    printer = TextPrinter(display)
    printers = Printers(printer.doprint, lambda m, shape=None: text_matrix(m, printer, max_side, shape), display,
                        latex=False,
                        max_side=max_side, fits=lambda m: grid_fits(m, printer, max_side),
                        entry=lambda e: _entry(printer, e))
    view = build_view(derivation, printers, lambda display: TextPrinter(display).doprint)
    return text_environment().get_template("derivation.txt.j2").render(**view)
