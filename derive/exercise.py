"""Exercise variants: the same network shape and conventions, other sizes and other numbers.

`variant_spec(spec, n)` is reproducible from n: a student's sheet and its solution come from the
same variant number, on any machine.
"""

from __future__ import annotations

import dataclasses
import random

import sympy as sp

from derive.example import finite_real
from derive.network import build_network
from derive.spec import Example, LayerSpec, NetworkSpec

MAX_UNITS = 4


def _numbers(rng: random.Random, shape: tuple[int, int], low: int, high: int, zero: bool = True
             ) -> tuple[tuple[sp.Integer, ...], ...]:
    choices = [v for v in range(low, high + 1) if zero or v != 0]
    return tuple(tuple(sp.Integer(rng.choice(choices)) for _ in range(shape[1])) for _ in range(shape[0]))


def variant_spec(spec: NetworkSpec, n: int) -> NetworkSpec:
    """Widths moved by at most one (the output width kept), and small integer numbers to work with."""
    rng = random.Random(f"{spec.name}/{n}")
    # a layer of two or more stays two or more: with one unit, the diagonal and outer-product steps are trivial
    widths = [max(min(w, 2), min(MAX_UNITS, w + rng.choice((-1, 0, 1)))) for w in spec.widths[:-1]] + \
        [spec.widths[-1]]
    layers = tuple(dataclasses.replace(layer, units=widths[i + 1]) for i, layer in enumerate(spec.layers))
    base = dataclasses.replace(spec, input=widths[0], layers=layers, example=None, name=f"{spec.name}-variant-{n}",
                               title=f"{spec.title or spec.name} (variant {n})")
    for _ in range(200):
        example = _example(base, layers, rng)
        if _workable(dataclasses.replace(base, example=example)):
            return dataclasses.replace(base, example=example)
    return dataclasses.replace(base, example=example)


def _example(spec: NetworkSpec, layers: tuple[LayerSpec, ...], rng: random.Random) -> Example:
    widths = spec.widths
    x = tuple(sp.Integer(rng.choice((-2, -1, 1, 2))) for _ in range(widths[0]))
    params = []
    for l, layer in enumerate(layers, start=1):
        shape = (widths[l], widths[l - 1]) if spec.convention == "column" else (widths[l - 1], widths[l])
        # no zero weight: a unit whose only way on is a zero weight passes nothing back, and every answer
        # below it would be 0
        params.append((f"W{l}", _numbers(rng, shape, -2, 2, zero=False)))
        if layer.bias:
            params.append((f"b{l}", _numbers(rng, (1, widths[l]), -1, 1)))
    k = widths[-1]
    if spec.loss.target == "index":
        y: tuple[sp.Integer, ...] | int = rng.randint(1, k)
    elif spec.loss.kind in ("bce", "mean_bce"):
        y = tuple(sp.Integer(rng.randint(0, 1)) for _ in range(k))
    elif spec.loss.kind == "ce":
        hot = rng.randrange(k)
        y = tuple(sp.Integer(int(i == hot)) for i in range(k))
    else:
        y = tuple(sp.Integer(rng.randint(-2, 2)) for _ in range(k))
    return Example(x, y, tuple(params))


def _workable(spec: NetworkSpec) -> bool:
    """Numbers a student can work with and learn from: no pre-activation of a relu-like layer exactly at
    its kink (its derivative there is a convention), no number outside a formula's domain (log z at
    z ≤ 0), a softmax's inputs within 4 of each other (beyond, its outputs are 0 and 1 to many digits
    and every gradient vanishes), and, where there are kinked units, a gate closed somewhere but some
    gate of every layer open."""
    net = build_network(spec)
    ex = spec.example
    assert ex is not None
    values: dict = dict(zip(net.x, ex.x))
    kinked, closed = False, False
    for layer in net.layers:
        rows = ex.param(f"W{layer.index}")
        values.update({layer.W[i, j]: rows[i][j] for i in range(layer.W.rows) for j in range(layer.W.cols)})
        if layer.b is not None:
            values.update(zip(layer.b, ex.param(f"b{layer.index}")[0]))
        zs = [e.xreplace(values) for e in layer.z_exprs]
        if layer.activation.kinked and 0 in zs:
            return False
        if layer.activation.kinked and layer.index < len(net.layers):
            if all(z < 0 for z in zs):
                return False  # every gate closed: nothing passes back, and every gradient below is 0
            kinked = True
            closed = closed or any(z < 0 for z in zs)
        if not layer.activation.elementwise and max(zs) - min(zs) > 4:
            return False
        values.update(dict(zip(layer.z, zs)))
        hs = [e.xreplace(values) for e in layer.h_exprs]
        if not all(finite_real(h) for h in hs):
            return False
        values.update(dict(zip(layer.h, hs)))
    return closed or not kinked
