"""Whether the loss can ever be defined on what the last layer puts out.

Binary cross-entropy takes log ŷ and log(1 − ŷ), so it needs 0 < ŷ < 1; cross-entropy takes log ŷ and
needs ŷ > 0. The output's range is SymPy's (`function_range`) where SymPy finds it, and otherwise is
sampled on a grid of z; when it misses the interval the loss needs, every output says so. Seed 001
prints its sigmoid as 1/(1 − e^(−z)), whose values are below 0 or above 1: binary cross-entropy on it
is never defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
from sympy.calculus.util import function_range

from derive.activations import Z, _time_limit

SAMPLES = np.linspace(-30.0, 30.0, 6001)


@dataclass(frozen=True)
class DomainWarning:
    layer: int
    loss: str
    needs: str          # "(0, 1)" or "(0, ∞)"
    proved: bool        # SymPy found the range (True), or a grid of z found no value inside (False)

    def text(self, units: str) -> str:
        how = "never takes" if self.proved else f"takes, at no z in [{SAMPLES[0]:g}, {SAMPLES[-1]:g}] tried,"
        return (f"layer {self.layer}'s activation {how} a value in {self.needs}, where the loss {self.loss} is "
                f"defined: it is undefined at every output ({units})")


@cache
def _range(formula: sp.Expr) -> sp.Set | None:
    try:
        with _time_limit(1):
            return function_range(formula, Z, sp.S.Reals)
    except (TimeoutError, NotImplementedError, ValueError, TypeError, AttributeError):
        return None


def _sampled_hits(formula: sp.Expr, interval: sp.Interval) -> bool:
    f = sp.lambdify(Z, formula, "numpy")
    with np.errstate(all="ignore"):
        values = np.asarray(f(SAMPLES), dtype=float) * np.ones_like(SAMPLES)
    low, high = float(interval.start), float(interval.end)
    return bool(np.any((values > low) & (values < high)))


def loss_domain(spec) -> DomainWarning | None:
    """A warning when no output of the last layer's elementwise activation can be where the loss is defined."""
    loss = spec.loss.resolve()
    if not loss.needs_probabilities:
        return None
    act = spec.layers[-1].resolve()
    if not act.elementwise:
        return None  # softmax: always in (0, 1)
    interval = sp.Interval.open(0, 1) if loss.name in ("bce", "mean_bce") else sp.Interval.open(0, sp.oo)
    needs = "(0, 1)" if loss.name in ("bce", "mean_bce") else "(0, ∞)"
    found = _range(act.formula)
    if found is not None:
        return DomainWarning(len(spec.layers), loss.name, needs, True) \
            if found.intersect(interval) is sp.S.EmptySet else None
    finite = sp.Interval.open(0, 1) if interval.end == 1 else sp.Interval.open(0, 1e300)
    return None if _sampled_hits(act.formula, finite) else DomainWarning(len(spec.layers), loss.name, needs, False)
