"""Wide layers shown by a small instance of the same network.

A derivation displays every local Jacobian and every product explicitly. At 784 × 256 that is a
256 × 200 704 matrix of symbols, which no one reads and SymPy builds for minutes; a handout elides it
to its first rows and columns and its last one anyway. So a network with a layer wider than `CAP` is
derived at a small instance: each width above `CAP` becomes one of CAP + 1, CAP + 2, … (distinct
widths stay distinct, and every one is wider than a displayed side, so every wide block is elided
the same way), and the rest is unchanged. The block structure of each Jacobian (identity, diagonal,
dense, Kronecker) and every rewrite depend on the layer's kind, not on its width: they are found and
checked on the instance, and the index forms prove the compact results at symbolic widths.

What is shown is then relabelled to the real widths: the last unit of a narrowed layer is its real
last unit (x₉ of the instance is x₇₈₄), and shapes are the real ones. The entries shown (the first
few and the last of each side) are exactly those of the full network.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import sympy as sp

from derive.spec import NetworkSpec

CAP = 6  # widths up to this are derived as they are; wider ones at a small instance

_INDEXED = re.compile(r"(?P<block>x|y|yhat|(?:z|h|b|delta|dact|dL_dh)(?P<layer>\d+))_(?P<i>\d+)"
                      r"|W(?P<wl>\d+)_(?P<wi>\d+)_(?P<wj>\d+)")


@dataclass(frozen=True)
class Sizes:
    """The real widths of a network derived at a smaller instance: per layer (0 for the input)."""

    real: tuple[int, ...]
    small: tuple[int, ...]
    convention: str
    cap: int = CAP

    def _index(self, layer: int, i: int) -> int:
        """A unit's index at the real width: the instance's last unit is the layer's last."""
        return self.real[layer] if i == self.small[layer] and self.small[layer] != self.real[layer] else i

    def symbol(self, s: sp.Symbol) -> sp.Symbol:
        """The component symbol at the real widths (x_9 -> x_784); others unchanged."""
        m = _INDEXED.fullmatch(s.name)
        if not m:
            return s
        depth = len(self.real) - 1
        if m["wl"]:
            l, i, j = int(m["wl"]), int(m["wi"]), int(m["wj"])
            rows, cols = (l, l - 1) if self.convention == "column" else (l - 1, l)
            return sp.Symbol(f"W{l}_{self._index(rows, i)}_{self._index(cols, j)}")
        block, i = m["block"], int(m["i"])
        layer = 0 if block == "x" else depth if block in ("y", "yhat") else int(m["layer"])
        return sp.Symbol(f"{block}_{self._index(layer, i)}")

    def rename(self, expr: sp.Basic) -> sp.Basic:
        """Every component symbol of `expr` at the real widths."""
        if not isinstance(expr, sp.Basic):
            return expr
        mapping = {s: self.symbol(s) for s in expr.atoms(sp.Symbol)}  # a Derivative's variable too
        mapping = {a: b for a, b in mapping.items() if a != b}
        return expr.xreplace(mapping) if mapping else expr

    def dimension(self, n: int) -> int:
        """One side that is one layer's width, at its real size (every narrowed width is distinct)."""
        for small, real in zip(self.small, self.real):
            if n == small:
                return real
        return n

    def block_shape(self, name: str, shape: tuple[int, int]) -> tuple[int, int]:
        """A named block's real shape: its sides are layer widths, or, for a flattened weight, their product."""
        m = re.fullmatch(r"dL_dvecW(\d+)", name)
        if m:
            l = int(m[1])
            return 1, self.real[l] * self.real[l - 1]
        return self.dimension(shape[0]), self.dimension(shape[1])

    def shape_of(self, of: sp.Basic | None, shape: tuple[int, int]) -> tuple[int, int]:
        """The real shape of a quantity shown as `of` (a named block, or its transpose): by its name
        where it has one, else side by side."""
        if isinstance(of, sp.MatrixSymbol):
            return self.block_shape(of.name, shape)
        if isinstance(of, sp.Transpose) and isinstance(of.arg, sp.MatrixSymbol):
            return self.block_shape(of.arg.name, shape[::-1])[::-1]
        return self.dimension(shape[0]), self.dimension(shape[1])

    def jacobian_shape(self, of: str, wrt: str) -> tuple[int, int]:
        return self.size(of), self.size(wrt)

    def size(self, block: str) -> int:
        """The number of entries of a block named in a Jacobian (`W2` meaning vec(W2))."""
        depth = len(self.real) - 1
        if block == "L":
            return 1
        if block == "x":
            return self.real[0]
        if block in ("y", "yhat"):
            return self.real[depth]
        m = re.fullmatch(r"([A-Za-z]+)(\d+)", block)
        assert m, block
        l = int(m[2])
        return self.real[l] * self.real[l - 1] if m[1] == "W" else self.real[l]


def small_instance(spec: NetworkSpec, cap: int = CAP) -> tuple[NetworkSpec, Sizes] | None:
    """The spec with every width above `cap` narrowed (distinct widths stay distinct), and the real
    widths; None when every width is at most CAP. The output width is kept where the loss averages
    over it (mse, mean_bce: its 1/K must read the real K)."""
    widths = spec.widths
    keep_output = spec.loss.kind in ("mse", "mean_bce")
    kept = widths[-1] if keep_output else None
    narrowed = sorted({w for k, w in enumerate(widths) if w > cap and not (keep_output and k == len(widths) - 1)})
    if not narrowed:
        return None
    # cap + 1, cap + 2, …: distinct, and none equal to a width that is kept (each side maps back uniquely)
    free = (n for n in range(cap + 1, cap + 2 + len(narrowed) + 1) if n != kept)
    new = {w: next(free) for w in narrowed}
    small = tuple(w if keep_output and k == len(widths) - 1 else new.get(w, w) for k, w in enumerate(widths))
    layers = tuple(dataclasses.replace(layer, units=units) for layer, units in zip(spec.layers, small[1:]))
    return dataclasses.replace(spec, input=small[0], layers=layers), Sizes(widths, small, spec.convention, cap)
