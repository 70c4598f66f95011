"""Loss functions: one table of formulas in ŷ_k and y_k. Their gradients come from SymPy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp

from derive.errors import DeriveError

Formula = Callable[[Sequence[sp.Symbol], Sequence[sp.Symbol]], sp.Expr]


@dataclass(frozen=True)
class Loss:
    name: str
    description: str
    formula: Formula = None  # type: ignore[assignment]
    # Cross-entropy's targets are a distribution (or one-hot): Σ_k y_k = 1 is part of the problem.
    targets_sum_to_one: bool = False
    # Outputs must lie in (0, 1): logs of ŷ and of 1 − ŷ appear.
    needs_probabilities: bool = False

    def expression(self, yhat: Sequence[sp.Symbol], y: Sequence[sp.Symbol]) -> sp.Expr:
        return self.formula(yhat, y)


def _sse(yh, y):
    return sp.Add(*[(a - b) ** 2 for a, b in zip(yh, y)])


def _bce(yh, y):
    return -sp.Add(*[b * sp.log(a) + (1 - b) * sp.log(1 - a) for a, b in zip(yh, y)])


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("sse", "sum of squared errors, Σ_k (ŷ_k − y_k)²", _sse),
        Loss("half_sse", "half the sum of squared errors, ½ Σ_k (ŷ_k − y_k)²",
             lambda yh, y: _sse(yh, y) / 2),
        Loss("mse", "mean squared error, (1/K) Σ_k (ŷ_k − y_k)²", lambda yh, y: _sse(yh, y) / len(y)),
        Loss("bce", "binary cross-entropy, −Σ_k [y_k log ŷ_k + (1 − y_k) log(1 − ŷ_k)]", _bce,
             needs_probabilities=True),
        Loss("mean_bce", "binary cross-entropy averaged over the K outputs, "
                         "−(1/K) Σ_k [y_k log ŷ_k + (1 − y_k) log(1 − ŷ_k)]",
             lambda yh, y: _bce(yh, y) / len(y), needs_probabilities=True),
        Loss("ce", "cross-entropy, −Σ_k y_k log ŷ_k",
             lambda yh, y: -sp.Add(*[b * sp.log(a) for a, b in zip(yh, y)]),
             targets_sum_to_one=True, needs_probabilities=True),
    )
}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise DeriveError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]
