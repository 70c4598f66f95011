"""Shared test helpers: random specs (hypothesis), and numeric evaluation of derivation data."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from derive.spec import NetworkSpec, spec_from_dict

HIDDEN = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "z/(1 + exp(-z))", "softmax"]
USER = ["z/(1 + exp(-z))", "log(1 + exp(z)) - log(2)", "z**3/3 + z", "Max(z, z/4)",
        "Piecewise((z, z > 0), (exp(z) - 1, True))", "Piecewise((z, z > 0), (z/4, z < 0), (0, True))"]
KINKED = ("relu", "leaky_relu")

SLOW = False  # set by conftest under --slow


def sweep(fast: int, slow: int) -> int:
    """A hypothesis sweep's number of examples: `fast` in the default run, `slow` under --slow."""
    return slow if SLOW else fast


@st.composite
def spec_dicts(draw, max_depth: int = 4, max_width: int = 5) -> dict[str, Any]:
    depth = draw(st.integers(1, max_depth))
    loss = draw(st.sampled_from(["sse", "half_sse", "mse", "bce", "mean_bce", "ce", "ce_index"]))
    layers = []
    for _ in range(depth - 1):
        act = draw(st.sampled_from(HIDDEN[:-1] + USER + ["softmax"]))
        # a softmax over one unit is refused by the spec (its output is constantly 1)
        layers.append({"units": draw(st.integers(2 if act == "softmax" else 1, max(2, max_width))), "activation": act,
                       "bias": draw(st.booleans())})
    if loss in ("ce", "ce_index"):
        last = draw(st.sampled_from(["softmax", "softmax", "sigmoid"])) if loss == "ce" else "softmax"
        units = draw(st.integers(2, max_width))
    elif loss in ("bce", "mean_bce"):
        last, units = "sigmoid", draw(st.integers(1, max_width))
    else:
        last = draw(st.sampled_from(["identity", "identity", "sigmoid", "tanh", "relu", "z/(1 + exp(-z))"]))
        units = draw(st.integers(1, max_width))
    layers.append({"units": units, "activation": last, "bias": draw(st.booleans())})
    for layer in layers:
        if layer["activation"] == "leaky_relu" and draw(st.booleans()):
            layer["slope"] = draw(st.sampled_from([0.01, 0.2, 0.5]))
    return {
        "input": draw(st.integers(1, max_width)),
        "convention": draw(st.sampled_from(["column", "row"])),
        "layout": draw(st.sampled_from(["gradient", "numerator"])),
        "vec": draw(st.sampled_from(["row-major", "column-major"])),
        "layer": layers,
        "loss": {"kind": "ce" if loss == "ce_index" else loss,
                 "target": "index" if loss == "ce_index" else "vector",
                 "batch": draw(st.sampled_from(["mean", "sum"]))},
    }


def specs(**kwargs) -> st.SearchStrategy[NetworkSpec]:
    return spec_dicts(**kwargs).map(spec_from_dict)


def kinked(spec: NetworkSpec) -> list[bool]:
    out = []
    for layer in spec.layers:
        formula = layer.resolve().formula
        out.append(formula is not None and formula.has(sp.Max, sp.Piecewise, sp.Heaviside, sp.Abs))
    return out


def random_point(net, rng: np.random.Generator, margin: float = 0.05) -> dict[sp.Symbol, float]:
    """Numbers for x, y, W, b, and the forward values z, h, yhat they give, away from kinks."""
    spec = net.spec
    kinks = kinked(spec)
    for _ in range(500):
        values: dict[sp.Symbol, float] = {s: float(v) for s, v in zip(net.x, rng.standard_normal(len(net.x)))}
        ok = True
        for layer, kink in zip(net.layers, kinks):
            values.update({w: float(rng.standard_normal()) for w in layer.W})
            if layer.b is not None:
                values.update({b: float(0.5 * rng.standard_normal()) for b in layer.b})
            zs = [float(sp.N(e.xreplace(values))) for e in layer.z_exprs]
            if kink and min(abs(z) for z in zs) < margin:
                ok = False
                break
            values.update(dict(zip(layer.z, zs)))
            values.update({h: float(sp.N(e.xreplace(values))) for h, e in zip(layer.h, layer.h_exprs)})
        if ok:
            break
    else:
        raise AssertionError("no point away from the kinks")
    k = len(net.y)
    if spec.loss.kind == "ce":
        target = np.zeros(k)
        target[rng.integers(0, k)] = 1.0
        if spec.loss.target == "vector":
            target = np.exp(rng.standard_normal(k))
            target /= target.sum()
    elif spec.loss.kind in ("bce", "mean_bce"):
        target = rng.uniform(0.1, 0.9, k)
    else:
        target = rng.standard_normal(k)
    values.update({s: float(v) for s, v in zip(net.y, target)})
    return values


def numeric(matrix, values: dict[sp.Symbol, float]) -> np.ndarray:
    """A matrix of expressions at the given numbers (SymPy evaluates as it substitutes)."""
    floats = {s: sp.Float(v, 30) for s, v in values.items()}
    m = sp.Matrix(matrix)
    return np.array([[float(sp.N(m[i, j].xreplace(floats))) for j in range(m.cols)] for i in range(m.rows)])


@cache
def derive_cached(spec: NetworkSpec):
    """The derivation tests share: the derandomized strategies draw the same specs in several files."""
    from derive.derivation import derive

    return derive(spec)
