"""How each displayed formula was proved: one record per formula, carried in the data model.

Every formula a renderer shows comes with a `Check`. A definition (the forward pass, the loss) says so;
anything derived says which proof was run and whether it passed. A formula whose check did not pass
is shown as NOT VERIFIED, never as true.
"""

from __future__ import annotations

from dataclasses import dataclass

# What each method means, for the JSON and for the legend of a handout.
METHODS: dict[str, str] = {
    "definition": "given by the spec",
    "differentiation": "SymPy differentiated the forward equations",
    "chain rule": "the quantity reaches the loss only through the next one (read off the forward equations), "
                  "and the block product equals the product of the Jacobians",
    "product": "SymPy multiplied the matrices shown",
    "expand": "both sides written out over the components; the difference expands (or cancels) to 0",
    "dependency": "an entry is 0 wherever its expression does not contain the variable",
    "index": "SymPy summed the Kronecker deltas at symbolic sizes; written out at concrete sizes, the result "
             "equals the matrix derivation",
    "instances": "with this network's layer numbers, it is each layer's checked result",
    "steps": "every step of its derivation checked",
    "identity": "a scalar identity, checked by SymPy",
    "numbers": "the compact forms and the products of the Jacobians give the same numbers",
}


@dataclass(frozen=True)
class Check:
    method: str
    passed: bool
    detail: str = ""

    def __post_init__(self) -> None:
        assert self.method in METHODS, self.method

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.method, "passed": self.passed}
        if self.detail:
            out["detail"] = self.detail
        return out


DEFINITION = Check("definition", True)
DIFFERENTIATED = Check("differentiation", True)
MULTIPLIED = Check("product", True)


def all_of(method: str, checks: list[Check], detail: str = "") -> Check:
    """One check standing for several (a summary line, a chain's steps)."""
    return Check(method, all(c.passed for c in checks), detail)
