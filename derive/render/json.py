"""The machine-readable derivation (`derive show --json`): every expression a string SymPy reads back.

Component symbols keep their fixed names (x_1, W1_2_1, yhat_1, ...), whatever the display notation.
Compact forms are SymPy matrix expressions over the blocks listed under "blocks"; read one back with
`sympify(text, locals={name: MatrixSymbol(name, *shape)})`.
"""

from __future__ import annotations

import json
from typing import Any

import sympy as sp

from derive.chain import Chain
from derive.derivation import Derivation
from derive.example import WorkedExample


def expr(e: sp.Basic) -> str:
    return sp.sstr(e, order="none")


def matrix(m: sp.MatrixBase) -> list[list[str]]:
    return [[expr(m[i, j]) for j in range(m.cols)] for i in range(m.rows)]


def _block(d: Derivation, name: str, symbol: sp.MatrixSymbol, with_value: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"shape": [int(n) for n in symbol.shape]}
    if with_value:
        out["value"] = matrix(d.blocks.values[name])
    return out


def _steps(chain: Chain) -> list[dict[str, Any]]:
    return [{"rule": s.rule, "verified": s.verified, "lhs": expr(s.lhs), "rhs": expr(s.rhs)} for s in chain.steps]


def to_data(d: Derivation) -> dict[str, Any]:
    auxiliary = {"gL", *(f"dact{layer.index}" for layer in d.network.layers)}
    data: dict[str, Any] = {
        "spec": d.spec.to_dict(),
        "forward": [{"lhs": expr(eq.lhs), "rhs": expr(eq.rhs)} for eq in d.forward],
        "loss": {"lhs": "L", "rhs": expr(d.loss.rhs)},
        # Compact forms are matrix expressions over these blocks; σ′ and ∂L/∂ŷ come with their entries.
        "blocks": {name: _block(d, name, symbol, name in auxiliary) for name, symbol in d.blocks.symbols.items()},
        "jacobians": [
            {"of": j.of, "wrt": j.wrt, "shape": list(j.matrix.shape), "structure": j.structure,
             "block": expr(j.block), "matrix": matrix(j.matrix)}
            for j in d.local_jacobians
        ],
        "deltas": [
            {"layer": int(c.target.removeprefix("delta")), "shape": list(c.explicit.shape), "chain": list(c.factors),
             "explicit": matrix(c.explicit), "compact": expr(c.compact), "steps": _steps(c)}
            for c in d.deltas
        ],
        "gradients": [
            {"param": c.target, "shape": list(c.explicit.shape), "chain": list(c.factors),
             "explicit": matrix(c.explicit), "compact": expr(c.compact), "steps": _steps(c)}
            for c in d.gradients
        ],
        "verified": d.verified,
    }
    if d.example is not None:
        data["example"] = example_data(d.example)
    return data


def _quantities(items) -> dict[str, Any]:
    return {q.name: {"exact": matrix(q.exact), "decimal": q.decimal} for q in items}


def example_data(ex: WorkedExample) -> dict[str, Any]:
    return {
        "label": ex.label,
        "inputs": _quantities(ex.inputs),
        "forward": _quantities(ex.forward),
        "loss": {"exact": expr(ex.loss), "decimal": float(sp.N(ex.loss, 17))},
        "jacobians": _quantities(ex.jacobians),
        "deltas": _quantities(ex.deltas),
        "gradients": _quantities(ex.gradients),
        "agrees": ex.agrees,
    }


def render_json(d: Derivation) -> str:
    return json.dumps(to_data(d), indent=2, ensure_ascii=False) + "\n"
