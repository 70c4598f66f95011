"""The derivation as strings, ready for a template: the same model for the terminal and for LaTeX.

Only printing happens here: every expression comes finished from the Derivation, and a printer (text
or LaTeX) writes it in the spec's notation. Matrices are laid out by the caller's `matrix` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive import naming
from derive.activations import H, Z
from derive.chain import Chain
from derive.derivation import Derivation
from derive.naming import Display, function_names

CONVENTION_TEXT = {
    "column": "column vectors, z = W a + b",
    "row": "row vectors, z = a W + b",
}
LAYOUT_TEXT = {
    "gradient": "gradients shaped like the parameter",
    "numerator": "numerator layout (the Jacobian's arrangement, transposed)",
}
STRUCTURE_TEXT = {
    "row": "row vector",
    "identity": "identity",
    "diagonal": "diagonal",
    "softmax": "softmax: diag(p) − p pᵀ",
    "dense": "dense",
    "flattened-weight": "flattened weight (Kronecker)",
}


def picked(n: int, limit: int) -> list[int | None]:
    """Indices of a long side to show: all, or the first few, a gap (None), and the last."""
    if n <= limit:
        return list(range(n))
    return [*range(limit - 2), None, n - 1]


def display_for(derivation: Derivation) -> Display:
    n = derivation.spec.notation
    taken = {n.input, n.pre, n.post, n.target, n.weight, n.bias, n.loss, "g" if n.backward == "g" else ""}
    functions = function_names([layer.activation for layer in derivation.network.layers], taken)
    return Display(n, derivation.network.depth, functions)


@dataclass(frozen=True)
class Printers:
    expr: Callable[[sp.Basic], str]          # one expression (scalar or block)
    matrix: Callable[[sp.MatrixBase], Any]   # an explicit matrix, laid out for the medium
    display: Display
    latex: bool
    max_side: int = 6


def spoken_list(items: list[str]) -> str:
    """'1', '1 and 2', '1, 2 and 3'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def derivatives_view(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each activation derivative once, with the layers it belongs to (a sigmoid in every layer is one line)."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for layer in layers:
        if layer["derivative"]:
            key = (layer["prime"], layer["output_of"], layer["derivative"], layer["output_form"])
            groups.setdefault(key, []).append(layer["index"])
    return [{"prime": prime, "output_of": output_of, "derivative": derivative, "output_form": output_form,
             "layers": f"layer{'s' if len(indices) > 1 else ''} {spoken_list(indices)}"}
            for (prime, output_of, derivative, output_form), indices in groups.items()]


def _shape(m: sp.MatrixBase | tuple[int, ...]) -> str:
    rows, cols = m.shape if hasattr(m, "shape") else m
    return f"{rows}×{cols}"


def chain_view(chain: Chain, p: Printers, jac_names: dict[str, str], d: Derivation) -> dict[str, Any]:
    # A δ that starts a chain enters as the row it is in the product (δᵀ under the column convention).
    factors = [jac_names[f] if f in jac_names else p.expr(d.blocks.as_row(d.blocks[f])) for f in chain.factors]
    layer = int(chain.target.removeprefix("delta")) if chain.target.startswith("delta") else int(chain.target[1:])
    return {
        "target": chain.target,
        "heading": f"layer {p.display.label(layer)}" if chain.target.startswith("delta")
        else p.display.block(chain.target, p.latex),
        "lhs": p.expr(chain.lhs),
        "chain_lhs": p.expr(chain.steps[0].lhs),
        "factors": factors,
        "explicit": p.matrix(chain.explicit),
        "shape": _shape(chain.explicit),
        "compact": p.expr(chain.compact),
        "elided": max(chain.explicit.shape) > p.max_side,
        "general": p.expr(chain.general_entry),
        "general_lhs": _general_lhs(chain, p),
        "verified": chain.verified,
        "steps": [
            {"rule": s.rule, "reason": s.reason, "lhs": p.expr(s.lhs), "rhs": p.expr(s.rhs),
             "verified": s.verified}
            for s in chain.steps
        ],
    }


def _decimal(m: sp.MatrixBase) -> sp.ImmutableMatrix:
    """The decimals of an exact matrix, for display: a 6-significant-digit Float of each entry."""
    return sp.ImmutableMatrix(m.rows, m.cols, lambda i, j: sp.Float(sp.N(m[i, j], 6), 6))


def example_view(d: Derivation, p: Printers, jac_names: dict[str, str]) -> dict[str, Any] | None:
    ex = d.example
    if ex is None:
        return None

    def items(quantities, gradients=False):
        out = []
        for q in quantities:
            block = naming.gradient_block(q.name) if gradients else q.name
            name = jac_names.get(q.name) or p.display.block(block, p.latex)
            exact_is_decimal = all(e.is_Rational for e in q.exact)
            out.append({"name": name, "exact": p.matrix(q.exact), "shape": _shape(q.exact),
                        "decimal": None if exact_is_decimal else p.matrix(_decimal(q.exact))})
        return out

    return {
        "label": ex.label,
        "inputs": items(ex.inputs),
        "forward": items(ex.forward),
        "loss": p.expr(ex.loss),
        "loss_decimal": f"{float(sp.N(ex.loss, 17)):.6g}",
        "jacobians": items(ex.jacobians),
        "deltas": items(ex.deltas),
        "gradients": items(ex.gradients, gradients=True),
        "agrees": ex.agrees,
    }


def _general_lhs(chain: Chain, p: Printers) -> str:
    rows, cols = chain.compact.shape
    idx = "ij" if rows > 1 and cols > 1 else "i" if rows > 1 else "j" if cols > 1 else "1"
    lhs = p.expr(chain.lhs)
    return rf"\left[{lhs}\right]_{{{idx}}}" if p.latex else f"[{lhs}]_{idx}"


def build_view(d: Derivation, p: Printers) -> dict[str, Any]:
    spec, net = d.spec, d.network
    disp = p.display
    jac_names = {j.name: disp.jacobian(j.of, j.wrt, p.latex) for j in d.local_jacobians}
    layers = []
    tick = "'" if p.latex else "′"
    for layer in net.layers:
        act = layer.activation
        function = disp.function(layer.index, p.latex)
        layers.append({
            "index": disp.label(layer.index),
            "units": layer.n_out,
            "custom": act.user_defined,
            "activation": f"{function}({p.expr(Z)}) = {p.expr(act.formula)}" if act.user_defined else act.name,
            "function": function,
            # the scalar formulas' variables in the notation's letters: σ′(s) = z(1 − z) with z = σ(s)
            "prime": f"{function}{tick}({p.expr(Z)})",
            "output_of": f"{p.expr(H)} = {function}({p.expr(Z)})",
            "bias": layer.b is not None,
            "derivative": p.expr(act.derivative) if act.elementwise else "",
            "output_form": p.expr(act.output_form) if act.elementwise and act.output_form is not None else "",
        })
    forward = []
    for fb in d.forward_blocks:
        layer = net.layers[fb.layer - 1]
        forward.append({
            "affine": f"{p.expr(fb.z)} = {p.expr(fb.affine)}",
            "activation": (f"{p.expr(fb.h)} = {disp.function(fb.layer, p.latex)}({p.expr(fb.z)})"),
            "z_components": [(p.expr(z), p.expr(e)) for z, e in zip(layer.z, layer.z_exprs)],
            "h_components": [(p.expr(h), p.expr(e)) for h, e in zip(layer.h, layer.h_exprs)],
        })
    jacobians = [
        {"name": jac_names[j.name], "of": j.of, "wrt": j.wrt, "block": p.expr(j.block), "shape": _shape(j.matrix),
         "structure": j.structure, "structure_text": STRUCTURE_TEXT[j.structure], "matrix": p.matrix(j.matrix),
         "reason": j.reason}
        for j in d.local_jacobians
    ]
    return {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "input": spec.input,
        "input_name": disp.block("x", p.latex),
        "layers": layers,
        "derivatives": derivatives_view(layers),
        "loss_name": net.loss.name,
        "loss_text": net.loss.description,
        "target_index": spec.loss.target == "index",
        "convention": CONVENTION_TEXT[spec.convention],
        "layout": LAYOUT_TEXT[spec.layout],
        "vec": spec.vec,
        "forward": forward,
        "loss": p.expr(d.loss.rhs),
        "loss_symbol": disp.letter("loss", p.latex),
        "loss_gradient": p.expr(d.blocks["gL"]),
        "jacobians": jacobians,
        "deltas": [chain_view(c, p, jac_names, d) for c in d.deltas],
        "gradients": [chain_view(c, p, jac_names, d) for c in d.gradients],
        "example": example_view(d, p, jac_names),
        "verified": d.verified,
        "step_count": sum(len(c.steps) for c in (*d.deltas, *d.gradients)),
    }
