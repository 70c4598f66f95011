"""Numeric checks of generated code: central finite differences in float64, and PyTorch autograd.

The PyTorch reference is built from the spec's definitions alone (activation formulas and loss
definitions), never from anything derive derived, so it is an independent oracle for the gradients.
"""

from __future__ import annotations

import importlib.util
import tempfile
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp

from derive.activations import Z
from derive.errors import DeriveError, GeneratedCodeError
from derive.spec import NetworkSpec

RTOL, ATOL, STEP = 1e-5, 1e-7, 1e-6
PRE_ACTIVATION_BOUND = 20.0  # |z| beyond this saturates σ to within 2e-9 of 0 or 1
FD_ENTRIES = 200  # entries of one parameter differenced at most; a 784 × 256 W would take minutes


def load_module(source: str, name: str = "derived", folder: Path | None = None) -> types.ModuleType:
    """Import generated source from a file in `folder` (a new temporary one if None), as a user would
    import the written module."""
    folder = folder if folder is not None else Path(tempfile.mkdtemp(prefix="derive-"))
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_derive_{name}_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kinked(spec: NetworkSpec) -> list[bool]:
    """Layers whose activation has a kink (relu, leaky relu, a user Max or Abs): sample away from it."""
    return [layer.resolve().kinked for layer in spec.layers]


def sample_point(module, spec: NetworkSpec, rng: np.random.Generator, batch: int | None = 3,
                 dtype=np.float64, margin: float = 1e-2) -> tuple[dict, np.ndarray, np.ndarray]:
    """Parameters, x and y at random, with every kinked pre-activation at least `margin` from its kink
    and every pre-activation within ±PRE_ACTIVATION_BOUND. Past that bound a stack of growing
    activations (z³ of z³ …) saturates the output, and a central difference at step 1e-6 loses the
    digits the comparison needs; the weights shrink a little with each try until the point is tame.
    Every value of the forward pass, and the loss, must be finite too: a user formula such as log(z)
    or 1/z is not defined everywhere, nor is binary cross-entropy on a user formula's output outside
    (0, 1), and a point outside a domain would say nothing about the gradients."""
    kinked = _kinked(spec)
    shape = (batch, spec.input) if batch else (spec.input,)
    for attempt in range(200):
        params = module.init_params(rng, dtype=dtype)
        for name in params:
            if name.startswith("b"):  # nonzero biases, so that bias gradients are exercised
                params[name] = (0.3 * rng.standard_normal(params[name].shape)).astype(dtype)
            else:
                params[name] *= 0.97**attempt
        x = rng.standard_normal(shape).astype(dtype)
        y = _targets(spec, rng, batch, dtype)
        _clear_kinks(module, params, x, kinked, margin, spec.convention)
        with np.errstate(all="ignore"):  # outside a formula's domain: try another point
            values = module.forward(params, x)
            loss = module.loss(params, x, y)
        zs = [values[f"z{i + 1}"] for i in range(len(kinked))]
        if all(np.isfinite(v).all() for v in values.values()) and np.isfinite(loss) and all(
                np.max(np.abs(z)) <= PRE_ACTIVATION_BOUND for z in zs) and all(
                np.min(np.abs(z)) > margin for z, kink in zip(zs, kinked) if kink):
            return params, x, y
    raise DeriveError("found no random point where every activation and the loss are defined and finite, away "
                      "from the kinks, with moderate pre-activations; the gradients cannot be checked numerically")


def _clear_kinks(module, params: dict, x: np.ndarray, kinked: list[bool], margin: float, convention: str) -> None:
    """Move each kinked unit's pre-activations, layer by layer, just enough that none of them over the
    batch lies within `margin` of the kink. Rejecting points instead works for a few units, but about
    0.8 % of N(0, 1) lies within 0.01 of 0, so a point with a thousand relu pre-activations almost never
    passes. The move is a shift of the unit's bias; without biases, the same shift comes from the
    weights: with u such that a_b · u = 1 for every input a_b of the batch, adding shift_i u to unit i's
    weights adds shift_i to each of its pre-activations (u exists when the inputs are independent;
    otherwise the layer is left to rejection)."""
    for layer, kink in enumerate(kinked, start=1):
        if not kink:
            continue
        with np.errstate(all="ignore"):
            values = module.forward(params, x)
        z = np.atleast_2d(values[f"z{layer}"]).astype(np.float64)
        if not np.isfinite(z).all():
            continue
        shift = clearing_shift(z, margin)
        bias = params.get(f"b{layer}")
        if bias is not None:
            bias += shift.astype(bias.dtype)
            continue
        a = np.atleast_2d(x if layer == 1 else values[f"h{layer - 1}"]).astype(np.float64)
        with np.errstate(all="ignore"):
            u = np.linalg.lstsq(a, np.ones(a.shape[0]), rcond=None)[0]
        if np.all(np.isfinite(u)) and np.allclose(a @ u, 1.0, rtol=0, atol=1e-9):
            W = params[f"W{layer}"]
            W += (np.outer(shift, u) if convention == "column" else np.outer(u, shift)).astype(W.dtype)


def clearing_shift(z: np.ndarray, margin: float) -> np.ndarray:
    """Per column of z (examples × units), the shift of least size among 0, ±1.5 margin, ±3 margin, …
    that takes every entry of the column more than `margin` from 0. Each entry rules out an open
    interval of width 2 margin, which holds at most two of the candidates; 4B + 5 candidates leave one."""
    count = 2 * z.shape[0] + 2
    steps = np.array([0] + [s * k for k in range(1, count + 1) for s in (1, -1)], dtype=np.float64)
    candidates = 1.5 * margin * steps
    clear = (np.abs(z[:, :, None] + candidates) > margin).all(axis=0)  # units × candidates
    return candidates[np.argmax(clear, axis=1)]


def _targets(spec: NetworkSpec, rng: np.random.Generator, batch: int | None, dtype) -> np.ndarray | int:
    """Targets of the spec's kind: class labels, probability rows for ce, values in (0, 1) for bce."""
    k = spec.layers[-1].units
    lead = (batch,) if batch else ()
    if spec.loss.target == "index":
        return rng.integers(0, k, size=lead) if batch else int(rng.integers(0, k))
    if spec.loss.kind == "ce":
        logits = rng.standard_normal((*lead, k))
        return (np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)).astype(dtype)
    if spec.loss.kind in ("bce", "mean_bce"):
        return rng.uniform(0.05, 0.95, size=(*lead, k)).astype(dtype)
    return rng.standard_normal((*lead, k)).astype(dtype)


def finite_differences(module, params: dict, x, y, step: float = STEP,
                       entries: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Central differences of the loss for every entry of every parameter, or, for a parameter named
    in `entries`, at those flat indices only (the other entries are nan)."""
    grads = {}
    for name, value in params.items():
        g = np.full(value.shape, np.nan)
        work = value.copy()
        varied = {**params, name: work}
        for i in (entries or {}).get(name, range(value.size)):
            idx = np.unravel_index(i, value.shape)
            work[idx] = value[idx] + step
            plus = module.loss(varied, x, y)
            work[idx] = value[idx] - step
            minus = module.loss(varied, x, y)
            work[idx] = value[idx]
            g[idx] = (plus - minus) / (2 * step)
        grads[name] = g
    return grads


def fd_entries(params: dict, rng: np.random.Generator, most: int = FD_ENTRIES) -> dict[str, np.ndarray]:
    """For each parameter with more than `most` entries, `most` of its flat indices at random."""
    return {name: np.sort(rng.choice(value.size, most, replace=False))
            for name, value in params.items() if value.size > most}


# ------------------------------------------------------------------------------------------------
# PyTorch, from the spec's definitions


def _torch_scalar(expr: sp.Expr, z):
    """A SymPy formula in z evaluated on a tensor, node by node (no derivative is involved)."""
    import torch

    def ev(e):
        if e == Z:
            return z
        if e.is_Number:
            return torch.tensor(float(e), dtype=z.dtype)
        if e is sp.E:
            return torch.tensor(float(sp.E), dtype=z.dtype)
        if e is sp.pi:
            return torch.tensor(float(sp.pi), dtype=z.dtype)
        if isinstance(e, sp.Piecewise):  # before its arguments: a condition is not a tensor
            out = ev(e.args[-1].expr)
            for piece in reversed(e.args[:-1]):
                out = torch.where(ev_cond(piece.cond), ev(piece.expr), out)
            return out
        args = [ev(a) for a in e.args]
        if isinstance(e, sp.Add):
            out = args[0]
            for a in args[1:]:
                out = out + a
            return out
        if isinstance(e, sp.Mul):
            out = args[0]
            for a in args[1:]:
                out = out * a
            return out
        if isinstance(e, sp.Pow):
            return torch.pow(args[0], args[1])
        if isinstance(e, sp.Max | sp.Min):
            op = torch.maximum if isinstance(e, sp.Max) else torch.minimum
            out = args[0]
            for a in args[1:]:
                out = op(*torch.broadcast_tensors(out, a))
            return out
        table = {sp.exp: torch.exp, sp.log: torch.log, sp.tanh: torch.tanh, sp.sinh: torch.sinh,
                 sp.cosh: torch.cosh, sp.sin: torch.sin, sp.cos: torch.cos, sp.atan: torch.atan,
                 sp.Abs: torch.abs}
        if e.func in table:
            return table[e.func](args[0])
        if isinstance(e, sp.Heaviside):
            # By comparisons: torch.heaviside has no backward; a step's derivative is 0 away from it.
            at_zero = args[1] if len(args) > 1 else 0.5
            return (args[0] > 0).to(z.dtype) + at_zero * (args[0] == 0).to(z.dtype)
        raise NotImplementedError(f"no torch evaluation of {e.func}")

    def ev_cond(c):
        if isinstance(c, sp.StrictGreaterThan):
            return ev(c.lhs) > ev(c.rhs)
        if isinstance(c, sp.GreaterThan):
            return ev(c.lhs) >= ev(c.rhs)
        if isinstance(c, sp.StrictLessThan):
            return ev(c.lhs) < ev(c.rhs)
        if isinstance(c, sp.LessThan):
            return ev(c.lhs) <= ev(c.rhs)
        raise NotImplementedError(f"no torch evaluation of {c}")

    return ev(expr)


def torch_loss_and_grads(spec: NetworkSpec, params: dict, x, y) -> tuple[float, dict[str, np.ndarray]]:
    import torch
    import torch.nn.functional as F

    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    a = torch.tensor(np.atleast_2d(x), dtype=torch.float64)
    for l, layer in enumerate(spec.layers, start=1):
        W = tp[f"W{l}"]
        z = a @ W.T if spec.convention == "column" else a @ W
        if layer.bias:
            z = z + tp[f"b{l}"]
        name = layer.activation
        if name == "identity":
            a = z
        elif name == "relu":
            a = torch.relu(z)
        elif name == "leaky_relu":
            a = F.leaky_relu(z, float(sp.Rational(layer.slope)))
        elif name == "sigmoid":
            a = torch.sigmoid(z)
        elif name == "tanh":
            a = torch.tanh(z)
        elif name == "softplus":
            a = F.softplus(z)
        elif name == "softmax":
            a = torch.softmax(z, dim=-1)
        else:
            a = _torch_scalar(layer.resolve().formula, z)
    k = spec.layers[-1].units
    if spec.loss.target == "index":
        t = F.one_hot(torch.as_tensor(np.atleast_1d(y), dtype=torch.long), k).to(torch.float64)
    else:
        t = torch.tensor(np.atleast_2d(y), dtype=torch.float64)
    kind = spec.loss.kind
    if kind in ("sse", "half_sse", "mse"):
        per = ((a - t) ** 2).sum(-1) * {"sse": 1.0, "half_sse": 0.5, "mse": 1.0 / k}[kind]
    elif kind in ("bce", "mean_bce"):
        per = -(t * torch.log(a) + (1 - t) * torch.log(1 - a)).sum(-1) / (k if kind == "mean_bce" else 1)
    else:
        per = -(t * torch.log(a)).sum(-1)
    total = per.mean() if spec.loss.batch == "mean" else per.sum()
    total.backward()
    # No grad at all: nothing reaches the loss from this parameter (through a step, say), so its gradient is 0.
    return float(total.detach()), {k: v.grad.numpy() if v.grad is not None else np.zeros(v.shape)
                                   for k, v in tp.items()}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    reference: str  # finite differences | torch autograd | torch loss
    point: str      # where: one example, a batch of 3
    param: str
    max_abs: float
    max_rel: float
    ok: bool


@dataclass
class Report:
    rows: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        lines = [f"random points in float64; an entry agrees when |error| ≤ {ATOL:g} + {RTOL:g}·|reference| "
                 f"(central differences, step {STEP:g})",
                 f"{'reference':<19} {'at':<12} {'parameter':<10} {'max abs error':>14} {'max rel error':>14}  result"]
        for r in self.rows:
            lines.append(f"{r.reference:<19} {r.point:<12} {r.param:<10} {r.max_abs:>14.3e} {r.max_rel:>14.3e}  "
                         f"{'ok' if r.ok else 'MISMATCH'}")
        lines += self.notes
        lines.append("all gradients agree" if self.ok else "GRADIENTS DISAGREE")
        return "\n".join(lines) + "\n"


def compare(reference: str, point: str, mine: dict, theirs: dict, report: Report,
            entries: dict[str, np.ndarray] | None = None) -> None:
    """Largest errors of `mine` against `theirs` at `point`, over every entry or, where `entries`
    names a parameter, over those flat indices."""
    for name in theirs:
        a, b = np.asarray(mine[name], dtype=np.float64), np.asarray(theirs[name], dtype=np.float64)
        if entries and name in entries and a.shape == b.shape:
            a, b = a.reshape(-1)[entries[name]], b.reshape(-1)[entries[name]]
        diff = np.abs(a - b)
        ok = a.shape == b.shape and bool(np.all(diff <= ATOL + RTOL * np.abs(b)))
        rel = float(np.max(diff / np.maximum(np.abs(b), 1e-300))) if diff.size else 0.0
        report.rows.append(Comparison(reference, point, name, float(diff.max(initial=0.0)), rel, ok))


def check_module(module, spec: NetworkSpec, seed: int = 0, points: int = 2) -> Report:
    rng = np.random.default_rng(seed)
    report = Report()
    use_torch = torch_available()
    for k in range(points):
        batch = None if k == 0 else 3  # one single example, then batches
        point = "one example" if batch is None else f"batch of {batch}"
        params, x, y = sample_point(module, spec, rng, batch=batch)
        value, grads = module.loss_and_grads(params, x, y)
        entries = fd_entries(params, rng)
        compare("finite differences", point, grads, finite_differences(module, params, x, y, entries=entries),
                report, entries)
        if use_torch:
            t_value, t_grads = torch_loss_and_grads(spec, params, x, y)
            compare("torch autograd", point, grads, t_grads, report)
            if not np.isclose(value, t_value, rtol=RTOL, atol=ATOL):
                error = abs(value - t_value)
                relative = error / max(abs(t_value), 1e-300)
                report.rows.append(Comparison("torch loss", point, "L", error, relative, False))
    if entries:
        sizes = ", ".join(f"{name} ({params[name].size})" for name in entries)
        report.notes.append(f"finite differences at {FD_ENTRIES} entries chosen at random of each of {sizes}"
                            + ("; torch autograd at every entry" if use_torch else ""))
    if not use_torch:
        report.notes.append("PyTorch is not installed: checked against finite differences only")
    return report


def check_spec(spec: NetworkSpec, seed: int = 0) -> Report:
    from derive.render.numpy import numpy_source

    source = numpy_source(spec)
    name = spec.name.replace("-", "_")
    with tempfile.TemporaryDirectory(prefix="derive-") as folder:
        try:
            return check_module(load_module(source, name, Path(folder)), spec, seed)
        except DeriveError:  # an input that cannot be checked (no real values, no point clear of kinks)
            raise
        except Exception as err:  # the spec was valid, so whatever fails here is derive's own doing
            raise GeneratedCodeError(_failure(err, f"{name}.py")) from err


def _failure(err: Exception, file: str) -> str:
    """What raised, `E: message`, and where: the deepest line of the generated module that the error
    passed through, or else the deepest line of derive's own code."""
    message = str(err).splitlines()[0] if str(err) else ""
    what = f"{type(err).__name__}{': ' + message if message else ''}"
    frames = traceback.extract_tb(err.__traceback__)
    generated = [f for f in frames if Path(f.filename).name == file]
    if isinstance(err, SyntaxError) and Path(err.filename or "").name == file:
        return f"the generated {file} does not compile: {what} at line {err.lineno}; this is a bug in derive"
    if generated:
        f = generated[-1]
        return f"the generated {file} raised {what} at line {f.lineno} ({f.name}: {f.line}); this is a bug in derive"
    f = frames[-1]
    return f"derive check raised {what} at {Path(f.filename).name} line {f.lineno}; this is a bug in derive"
