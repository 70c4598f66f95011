"""The machine-readable derivation (`derive show --json`): every expression a string SymPy reads back.

Component symbols keep their fixed names (x_1, W1_2_1, yhat_1, ...), whatever the display notation.
Compact forms are SymPy matrix expressions over the blocks listed under "blocks"; read one back with
`sympify(text, locals={name: MatrixSymbol(name, *shape)})`. Every displayed formula comes with the
check that proved it ("check": {"method", "passed", "detail"}); `derive.checks.METHODS` says what
each method means, and "methods" repeats it.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

import sympy as sp
from sympy.printing.str import StrPrinter

from derive.chain import Chain, Step
from derive.checks import DEFINITION, METHODS
from derive.derivation import Derivation
from derive.example import WorkedExample
from derive.render.printers import MAX_TERMS
from derive.render.view import elided, picked, position
from derive.sizes import Sizes


class _Printer(StrPrinter):
    """SymPy's str, but an identity matrix reads back as one (sstr writes I, the imaginary unit)."""

    def _print_Identity(self, e: sp.Identity) -> str:
        return f"Identity({e.rows})"


# Set while a wide network's small instance is written out (derive.sizes): its matrices are written
# elided at the real widths.
_SIZES: contextvars.ContextVar[Sizes | None] = contextvars.ContextVar("sizes", default=None)


def expr(e: sp.Basic) -> str:
    sizes = _SIZES.get()
    return _Printer({"order": "none"}).doprint(sizes.rename(e) if sizes is not None else e)


def matrix(m: sp.MatrixBase, of: sp.Basic | None = None, shape: tuple[int, int] | None = None
           ) -> list[list[str]] | dict[str, Any]:
    """A list of rows; for a wide network, {"shape", "rows", "cols", "entries"}: the entries at the
    rows and columns listed (1-based, at the real widths), the rest following the same pattern."""
    sizes = _SIZES.get()
    if sizes is None:
        return [[expr(m[i, j]) for j in range(m.cols)] for i in range(m.rows)]
    real = shape or sizes.shape_of(of, m.shape)
    rows, cols = elided(m, sizes.cap)
    rows, cols = [i for i in rows if i is not None], [j for j in cols if j is not None]
    return {"shape": list(real), "rows": [position(i, m.rows, real[0]) for i in rows],
            "cols": [position(j, m.cols, real[1]) for j in cols],
            "entries": [[_entry(m[i, j]) for j in cols] for i in rows]}


def _entry(e: sp.Basic) -> str | None:
    """An entry of a wide network's matrix; null where it sums over a narrowed layer (more terms than a
    small instance holds, so the instance's sum is not the network's)."""
    if any(len(a.args) > MAX_TERMS for a in e.atoms(sp.Add)):
        return None
    return expr(e)


def _value(rhs: sp.Basic, of: sp.Basic | None = None) -> str | list[list[str]] | dict[str, Any]:
    return matrix(rhs, of) if isinstance(rhs, sp.MatrixBase) else expr(rhs)


def _block(d: Derivation, name: str, symbol: sp.MatrixSymbol, with_value: bool) -> dict[str, Any]:
    shape = tuple(int(n) for n in symbol.shape)
    out: dict[str, Any] = {"shape": list(d.sizes.shape_of(symbol, shape) if d.sizes else shape)}
    if with_value:
        out["value"] = matrix(d.blocks.values[name], symbol)
    return out


def _step(s: Step) -> dict[str, Any]:
    return {"rule": s.rule, "verified": s.verified, "lhs": expr(s.lhs), "rhs": _value(s.rhs, s.lhs),
            "check": s.check.to_dict()}


def _chain(d: Derivation, c: Chain, **head: Any) -> dict[str, Any]:
    explicit = d.explicit[c.target]
    shape = d.sizes.shape_of(c.lhs, explicit.shape) if d.sizes else explicit.shape
    return {**head, "shape": list(shape), "chain": list(c.full_chain), "local_chain": list(c.factors),
            "explicit": matrix(explicit, shape=shape), "compact": expr(c.compact) if c.compact is not None else None,
            "steps": [_step(s) for s in c.steps]}


def _teaching(d: Derivation) -> dict[str, Any]:
    t = d.teaching
    out: dict[str, Any] = {"focus_layer": t.focus}
    if t.index is not None:
        steps = [*t.index.steps, *((t.index.output,) if t.index.output else ())]
        out["index"] = [{"name": s.name, "lhs": expr(s.lhs), "forms": [expr(f) for f in s.forms],
                         "check": s.check.to_dict()} for s in steps]
    if t.recursion is not None:
        out["recursion"] = {"template_layer": t.recursion.template, "lhs": expr(t.recursion.step.lhs),
                            "rhs": expr(t.recursion.step.rhs), "check": t.recursion.check.to_dict()}
    if t.paths is not None:
        out["sum_over_paths"] = {"layer": t.paths.layer, "unit": t.paths.unit,
                                 "steps": [_step(t.paths.terms), _step(t.paths.weights), _step(t.paths.value)]}
    # the results for any layer, each a template layer's compact form (read with l − 1, l, l + 1)
    out["any_layer"] = [{"name": g.name, "template_layer": g.template, "lhs": expr(g.step.lhs),
                         "rhs": expr(g.step.rhs), "check": g.check.to_dict()} for g in t.general]
    out["parameter_chains"] = [{"param": c.param, "lhs": expr(c.lhs), "chain": list(c.factors),
                                "shared_with_delta": c.shared, "check": c.check.to_dict()} for c in t.chains]
    if t.unit is not None:
        out["scalar_unit"] = {"layer": t.unit.layer, "unit": t.unit.unit, "steps": [_step(s) for s in t.unit.steps]}
    if t.weight_column is not None:
        wc = t.weight_column
        out["weight_column"] = {"layer": wc.layer, "weight": wc.weight.name,
                                "steps": [_step(wc.column), _step(wc.gradient)]}
    out["dependencies"] = [{"jacobian": dep.jacobian, "zero": [list(row) for row in dep.zero],
                            "check": dep.check.to_dict()} for dep in t.dependencies]
    out["derivatives"] = [{"layers": list(i.layers), "steps": [_step(i.derivative)] +
                           ([_step(i.output_form)] if i.output_form else [])} for i in t.derivatives]
    out["summary"] = [{"quantity": r.chain.target, "lhs": expr(r.chain.lhs), "compact": expr(r.chain.compact),
                       "chain": list(r.chain.full_chain), "check": r.check.to_dict()} for r in t.summary]
    return out


def to_data(d: Derivation) -> dict[str, Any]:
    token = _SIZES.set(d.sizes)
    try:
        return _data(d)
    finally:
        _SIZES.reset(token)


def _data(d: Derivation) -> dict[str, Any]:
    auxiliary = {"gL", *(f"dact{layer.index}" for layer in d.network.layers)}
    data: dict[str, Any] = {
        "spec": d.spec.to_dict(),
        "forward": [{"lhs": expr(eq.lhs), "rhs": expr(eq.rhs), "check": eq.check.to_dict()} for eq in _forward(d)],
        "loss": {"lhs": "L", "rhs": expr(d.loss.rhs), "check": DEFINITION.to_dict()},
        # Compact forms are matrix expressions over these blocks; σ′ and ∂L/∂ŷ come with their entries.
        "blocks": {name: _block(d, name, symbol, name in auxiliary) for name, symbol in d.blocks.symbols.items()},
        "jacobians": [
            {"of": j.of, "wrt": j.wrt, "structure": j.structure, "block": expr(j.block),
             "shape": list(d.sizes.jacobian_shape(j.of, j.wrt) if d.sizes else j.matrix.shape),
             "matrix": matrix(j.matrix, shape=d.sizes.jacobian_shape(j.of, j.wrt) if d.sizes else None),
             "check": {"method": "differentiation", "passed": True}}
            for j in d.local_jacobians
        ],
        # The backward pass in the order it is derived: per layer from the output, the gradient the
        # layer receives, its δ, then its parameters'.
        "order": [c.target for c in d.chains],
        "loss_gradient": {"steps": [_step(s) for s in d.loss_gradient.steps],
                          "compact": expr(d.loss_gradient.compact) if d.loss_gradient.compact is not None else None,
                          "explicit": matrix(d.explicit["gL"], d.loss_gradient.lhs)},
        "upstream": [_chain(d, c, layer=c.layer) for c in d.upstreams],
        "deltas": [_chain(d, c, layer=c.layer) for c in d.deltas],
        "gradients": [_chain(d, c, param=c.target) for c in d.gradients],
        "teaching": _teaching(d),
        "methods": METHODS,
        "warnings": [d.domain.text(", ".join(s.name for s in d.network.yhat))] if d.domain else [],
        "verified": d.verified,
    }
    if d.example is not None:
        data["example"] = example_data(d.example)
    return data


def _forward(d: Derivation) -> list:
    """Every unit's equations; for a wide network, those of the units its matrices show."""
    if d.sizes is None:
        return list(d.forward)
    out = []
    for layer in d.network.layers:
        for k in (k for k in picked(layer.n_out, d.sizes.cap) if k is not None):
            out += [eq for eq in d.forward if eq.lhs in (layer.z[k], layer.h[k])]
    return out


def _quantities(items) -> dict[str, Any]:
    out = {}
    for q in items:
        out[q.name] = {"exact": matrix(q.exact), "decimal": q.decimal}
        if q.check is not None:
            out[q.name]["check"] = q.check.to_dict()
    return out


def example_data(ex: WorkedExample) -> dict[str, Any]:
    return {
        "label": ex.label,
        "inputs": _quantities(ex.inputs),
        "forward": _quantities(ex.forward),
        "loss": {"exact": expr(ex.loss), "decimal": float(sp.N(ex.loss, 17))},
        "backward": [{"layer": layer.layer, "quantities": [q.name for q in layer.quantities]}
                     for layer in ex.backward],
        "jacobians": _quantities(ex.jacobians),
        "upstream": _quantities(ex.upstreams),
        "deltas": _quantities(ex.deltas),
        "gradients": _quantities(ex.gradients),
        "kinks": [{"layer": k.layer, "unit": k.unit, "value": expr(k.value), "derivative": expr(k.derivative)}
                  for k in ex.kinks],
        "decimal_from": ex.decimal_from,
        "agrees": ex.agrees,
    }


def render_json(d: Derivation) -> str:
    return json.dumps(to_data(d), indent=2, ensure_ascii=False) + "\n"
