"""Every quantity as the full product of its chain, over the components: no δ, no ∂L/∂h, only x, y, W, b,
z, h and ŷ. The JSON's `explicit` entries (its contract) and the tests' comparisons with SymPy's own
derivative of the composed loss read these; the displayed derivation never expands them (its steps
are local, in terms of the quantity each receives).
"""

from __future__ import annotations

import sympy as sp

from derive import naming
from derive.chain import reshape


def explicit_products(d) -> dict[str, sp.ImmutableMatrix]:
    """target -> matrix: vectors in the convention's orientation, gradients in the spec's layout."""
    net, jac = d.network, d.jacobians
    column = d.spec.convention == "column"

    def orient(row: sp.MatrixBase) -> sp.ImmutableMatrix:
        return sp.ImmutableMatrix(row.T if column else row)

    def laid_out(m: sp.MatrixBase) -> sp.ImmutableMatrix:
        return sp.ImmutableMatrix(m.T if d.spec.layout == "numerator" else m)

    out: dict[str, sp.ImmutableMatrix] = {naming.LOSS_GRADIENT: orient(jac.loss.matrix)}
    L = net.depth
    rows: dict[int, sp.MatrixBase] = {L: jac.loss.matrix * jac.activation[L].matrix}
    for l in range(L - 1, 0, -1):
        up = rows[l + 1] * jac.inputs[l + 1].matrix
        out[naming.upstream(l)] = orient(up)
        rows[l] = up * jac.activation[l].matrix
    for layer in net.layers:
        l = layer.index
        out[naming.delta(l)] = orient(rows[l])
        out[f"W{l}"] = laid_out(reshape(rows[l] * jac.weights[l].matrix, layer.W.shape, d.spec.vec))
        if l in jac.biases:
            out[f"b{l}"] = laid_out(orient(rows[l] * jac.biases[l].matrix))
    return out
