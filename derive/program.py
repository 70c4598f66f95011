"""The gradient program: the derivation's compact forms as an ordered list of array statements.

This is the mathematics that code generation needs, done here so that the NumPy renderer only prints:
- a vector of component expressions that are one function applied entry by entry (σ′(z⁽¹⁾_i) for
  every i) becomes that scalar function of placeholder symbols, each standing for a whole array;
- the loss is rewritten in the last layer's pre-activations when it takes logs of the outputs
  (log softmax = z − logsumexp(z), log σ(z) = −log(1 + e^(−z))), so no log(0) can occur; the
  rewritten loss is checked to equal the original;
- a layer whose outputs are e^(z_i) / Σ_j e^(z_j) is marked as a softmax so it can be max-shifted;
- loss_and_grads gets its own order of the same statements, chosen so that arrays die early: each
  layer's gradients right after its δ, a mask that reads only z⁽ˡ⁾ computed with z⁽ˡ⁾ (a σ′ in z⁽ˡ⁾ and
  h⁽ˡ⁾ with h⁽ˡ⁾); then an array that nothing reads any more gives its memory to the next one of its
  shape (h⁽ˡ⁾ takes z⁽ˡ⁾'s, δ⁽ˡ⁾ takes h⁽ˡ⁾'s, such a σ′ takes z⁽ˡ⁾'s), which spares a (B, width)
  allocation per layer and the page faults of touching it;
- an exponential piece of a Piecewise gets its variable clamped to the interval where the piece is
  taken: np.where evaluates every piece at every entry, and ELU's e^z − 1 would overflow where z is;
- in loss_and_grads an activation with σ(u) = u·σ′(u) for every u (relu, leaky relu, |u|: a line
  through 0 on each side), once SymPy has checked that, is z⁽ˡ⁾ times the σ′ already computed for the
  backward pass: one multiply instead of evaluating σ (np.maximum, np.abs, or np.where of two pieces).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive import naming
from derive.derivation import Derivation

# Placeholders: each stands for a whole array in an elementwise statement.
U, V = sp.Symbol("_u"), sp.Symbol("_v")
LSE = sp.Symbol("_lse")  # log Σ_j exp(z_j) over the output layer


@dataclass(frozen=True)
class Elementwise:
    """target = f(arrays...), f a scalar expression in the placeholders."""

    target: str
    expr: sp.Expr
    args: tuple[tuple[sp.Symbol, str], ...]  # placeholder -> array name
    reuse: str | None = None                 # the argument, when nothing reads it from here on
    from_derivative: bool = False            # an activation as z ⊙ σ′(z), checked: σ(u) = u·σ′(u)


@dataclass(frozen=True)
class Softmax:
    target: str
    source: str
    layer: int


@dataclass(frozen=True)
class Block:
    """target = a block expression of the derivation (affine map, δ, gradient)."""

    target: str
    expr: sp.MatrixExpr
    kind: str                                # affine | delta | weight | bias
    equation: tuple[sp.Basic, sp.Basic]
    reuse: str | None = None                 # an array of the same shape that is dead from here on


@dataclass(frozen=True)
class LossSum:
    """Per example: coeff · Σ_k term(placeholders → columns), with _lse the logsumexp of `lse_of`."""

    coeff: sp.Expr
    term: sp.Expr
    args: tuple[tuple[sp.Symbol, str], ...]
    lse_of: str | None
    from_logits: bool
    factors: tuple[sp.Expr, sp.Expr] | None = None  # term = a·b, both whole arrays: the sum is a dot product


@dataclass(frozen=True)
class Program:
    forward: tuple[Elementwise | Softmax | Block, ...]  # every intermediate kept: forward() and loss()
    loss: LossSum | None        # None: the loss is printed component by component
    loss_components: sp.Expr    # the per-example loss in component symbols (fallback and reference)
    backward: tuple[Elementwise | Block, ...]  # loss_and_grads after the loss, output layer first
    outputs: tuple[str, ...]    # what forward() returns, in order
    scale_delta: str            # the δ that absorbs the 1/B of a mean over the batch
    training: tuple[Elementwise | Softmax | Block, ...]  # loss_and_grads' forward pass, masks moved in
    loss_reads: frozenset[str]  # the arrays the loss is computed from


def uniform(entries: Sequence[sp.Expr], columns: Sequence[tuple[sp.Symbol, Sequence[sp.Symbol]]]) -> sp.Expr | None:
    """f with entries[i] == f(columns[0][1][i], ...) for every i, in the placeholders; else None."""
    first = {syms[0]: ph for ph, syms in columns}
    f = entries[0].xreplace(first)
    for i, e in enumerate(entries):
        if f.xreplace({ph: syms[i] for ph, syms in columns}) != e:
            return None
    others = {s for _, syms in columns for s in syms}
    if f.free_symbols & others:
        return None
    return f


def is_softmax(h_exprs: Sequence[sp.Expr], zs: Sequence[sp.Symbol]) -> bool:
    total = sp.Add(*[sp.exp(z) for z in zs])
    return all(h == sp.exp(z) / total for h, z in zip(h_exprs, zs))


def _expand_logs(expr: sp.Expr) -> sp.Expr:
    """log of a product or quotient, split into a sum of logs: for real, positive arguments exact."""
    return expr.replace(lambda e: isinstance(e, sp.log),
                        lambda e: sp.expand_log(sp.log(sp.factor_terms(sp.together(e.args[0]))), force=True))


def loss_in_logits(d: Derivation) -> tuple[sp.Expr, bool]:
    """The loss with ŷ written through z⁽ᴸ⁾ when that removes every log of ŷ; else the loss as it is."""
    net = d.network
    last = net.layers[-1]
    loss = net.loss_expr
    if not loss.has(sp.log) or last.activation.is_identity:
        return loss, False
    rewritten = _expand_logs(loss.xreplace(dict(zip(last.h, last.h_exprs))))
    total = sp.Add(*[sp.exp(z) for z in last.z])
    rewritten = rewritten.xreplace({sp.log(total): LSE})
    if rewritten.has(sp.Pow) and any(p.exp.is_negative and p.base.has(*last.z) for p in rewritten.atoms(sp.Pow)):
        return loss, False  # a division is left: no gain in stability
    # The rewrite must be the same function: checked at a few exact points.
    probe = [sp.Rational(k, 7) - 1 for k in range(len(last.z) + len(net.y) + 3)]
    at = dict(zip(last.z, probe))
    at.update(zip(net.y, [sp.Rational(1, len(net.y))] * len(net.y)))
    original = loss.xreplace(dict(zip(last.h, last.h_exprs))).xreplace(at)
    candidate = rewritten.xreplace({LSE: sp.log(total)}).xreplace(at)
    if abs(sp.N(original - candidate, 30)) > 1e-20:
        return loss, False
    return rewritten, True


def _loss_sum(d: Derivation) -> LossSum | None:
    net = d.network
    last = net.layers[-1]
    expr, from_logits = loss_in_logits(d)
    coeff, rest = expr.as_coeff_Mul()
    terms = sp.Add.make_args(rest)
    k = len(net.y)
    outputs = last.z if from_logits else net.yhat
    # Gather the terms of the sum by the output they belong to; each must belong to exactly one.
    groups: dict[int, list[sp.Expr]] = {}
    for t in terms:
        idx = [i for i, (o, y) in enumerate(zip(outputs, net.y)) if t.has(o) or t.has(y)]
        if len(idx) != 1:
            return None
        groups.setdefault(idx[0], []).append(t)
    if sorted(groups) != list(range(k)):
        return None
    ordered = [sp.Add(*groups[i]) for i in range(k)]
    src = f"z{last.index}" if from_logits else "yhat"
    f = uniform(ordered, [(U, outputs), (V, net.y)])
    if f is None:
        return None
    lse_of = src if f.has(LSE) else None
    return LossSum(coeff, f, ((U, src), (V, "y")), lse_of, from_logits, dot_factors(f, {U, V}))


def dot_factors(term: sp.Expr, arrays: set[sp.Symbol]) -> tuple[sp.Expr, sp.Expr] | None:
    """a, b when the term is a·b with both factors whole (B, K) arrays: Σ a·b is then one dot product,
    with no product array in between. A minus sign goes into a factor that is a sum."""
    coeff, rest = term.as_coeff_Mul()
    factors = list(sp.Mul.make_args(rest))
    if len(factors) != 2 or not all(f.free_symbols & arrays for f in factors) or coeff not in (1, -1):
        return None
    if coeff == -1:
        sums = [i for i, f in enumerate(factors) if isinstance(f, sp.Add)]
        if not sums:
            return None
        factors[sums[0]] = -factors[sums[0]]
    assert sp.expand(factors[0] * factors[1] - term) == 0
    return factors[0], factors[1]


def _grows_exponentially(expr: sp.Expr) -> bool:
    """Whether an exponential of the variable (e^z, sinh, cosh, c^z) occurs in expr."""
    return any((isinstance(a, sp.exp | sp.sinh | sp.cosh) and a.free_symbols)
               or (isinstance(a, sp.Pow) and a.exp.free_symbols) for a in sp.preorder_traversal(expr))


def _on_own_domains(expr: sp.Piecewise) -> sp.Piecewise:
    """expr with each exponential piece's variable clamped to the interval where that piece is taken.
    np.where evaluates every piece everywhere, and e^z − 1 (ELU's left piece) overflows, with a
    warning, at the large z where the other piece is taken; clamped, it cannot. On its own interval a
    clamped piece is the piece itself, so the values are unchanged."""
    values = [piece.expr for piece in expr.args]
    if len(expr.free_symbols) != 1:
        return expr
    (u,) = expr.free_symbols
    rest = sp.S.Reals
    for k, piece in enumerate(expr.args):
        try:
            domain = rest if piece.cond == sp.true else rest.intersect(piece.cond.as_set())
        except (NotImplementedError, TypeError, ValueError):  # a condition that is no interval of u
            return expr
        rest = rest - domain
        if isinstance(domain, sp.Interval) and _grows_exponentially(piece.expr):
            clamped = u
            if domain.inf.is_finite and not _bounded_towards(piece.expr, u, -sp.oo):
                clamped = sp.Max(clamped, domain.inf)
            if domain.sup.is_finite and not _bounded_towards(piece.expr, u, sp.oo):
                clamped = sp.Min(clamped, domain.sup)
            values[k] = piece.expr.subs(u, clamped)
    return sp.Piecewise(*zip(values, (piece.cond for piece in expr.args), strict=True))


def _bounded_towards(expr: sp.Expr, u: sp.Symbol, end: sp.Expr) -> bool:
    """Whether expr has a finite limit as u goes to `end` (then it cannot overflow out there)."""
    try:
        return bool(sp.limit(expr, u, end).is_finite)
    except (NotImplementedError, ValueError, TypeError):
        return False



def _evaluable_everywhere(s):
    """s with every Piecewise in it on its own domains (see above)."""
    if isinstance(s, Elementwise) and s.expr.has(sp.Piecewise):
        return dataclasses.replace(s, expr=s.expr.replace(lambda e: isinstance(e, sp.Piecewise), _on_own_domains))
    return s


def build_program(d: Derivation) -> Program:
    net, blocks = d.network, d.blocks
    forward: list = []
    outputs: list[str] = []
    for fb in d.forward_blocks:
        layer = net.layers[fb.layer - 1]
        z, h = f"z{fb.layer}", naming.activation_block(fb.layer, fb.layer == net.depth)
        forward.append(Block(z, fb.affine, "affine", (fb.z, fb.affine)))
        if layer.activation.elementwise:
            f = uniform(layer.h_exprs, [(U, layer.z)])
            assert f is not None  # an elementwise activation is the same formula in every unit
            forward.append(Elementwise(h, f, ((U, z),)))
        elif is_softmax(layer.h_exprs, layer.z):
            forward.append(Softmax(h, z, fb.layer))
        else:
            raise NotImplementedError(f"no code for the vector activation of layer {fb.layer}")
        outputs += [z, h]

    needed = set()
    for chain in (*d.deltas, *d.gradients):
        needed |= {s.name for s in code_form(chain, d.blocks[chain.target].shape).atoms(sp.MatrixSymbol)}
    # Per layer, output layer first: relu′ (say), δ, then the gradients that read δ.
    per_layer: dict[int, list] = {l: [] for l in range(net.depth, 0, -1)}
    if naming.LOSS_GRADIENT in needed:
        f = uniform(list(blocks.values[naming.LOSS_GRADIENT]), [(U, net.yhat), (V, net.y)])
        assert f is not None, "the loss gradient is not one function of (ŷ_k, y_k)"
        per_layer[net.depth].append(Elementwise(naming.LOSS_GRADIENT, f, ((U, "yhat"), (V, "y"))))
    for chain in d.deltas:
        l = int(chain.target.removeprefix("delta"))
        dact = naming.derivative_block(l)
        if dact in needed:
            layer = net.layers[l - 1]
            entries = list(blocks.values[dact])
            cols = [(U, layer.z), (V, layer.h)]
            f = uniform(entries, cols)
            assert f is not None
            args = tuple((ph, name) for ph, name in ((U, f"z{l}"), (V, naming.activation_block(l, l == net.depth)))
                         if f.has(ph))
            per_layer[l].append(Elementwise(dact, f, args))
        step = code_step(chain, d.blocks[chain.target].shape)
        per_layer[l].append(Block(chain.target, step.rhs, "delta", (step.lhs, step.rhs)))
    for chain in d.gradients:
        step = code_step(chain, d.blocks[chain.target].shape)
        kind = "weight" if chain.target.startswith("W") else "bias"
        l = int(chain.target[1:])
        per_layer[l].append(Block(naming.gradient(chain.target), step.rhs, kind, (step.lhs, step.rhs)))
    backward = [s for statements in per_layer.values() for s in statements]
    loss = _loss_sum(d)
    if loss is None:  # printed component by component, from ŷ and y
        loss_reads = frozenset({"yhat", "y"})
    else:
        loss_reads = frozenset({name for _, name in loss.args} | ({f"lse{net.depth}"} if loss.lse_of else set()))
    forward = [_evaluable_everywhere(s) for s in forward]
    backward = [_evaluable_everywhere(s) for s in backward]
    training, backward = _with_masks_early(forward, backward, net.depth)
    training = _with_activations_from_derivatives(training, net.depth)
    training, backward = _with_reuse(training, loss_reads, backward, net.depth)
    return Program(tuple(forward), loss, net.loss_expr, tuple(backward), tuple(outputs), naming.delta(net.depth),
                   tuple(training), loss_reads)


def _reads(s: Elementwise | Softmax | Block) -> set[str]:
    if isinstance(s, Block):
        return {m.name for m in s.expr.atoms(sp.MatrixSymbol)}
    if isinstance(s, Softmax):
        return {s.source}
    return {name for _, name in s.args}


def _with_masks_early(forward: list, backward: list, depth: int) -> tuple[list, list]:
    """A σ′ that reads z⁽ˡ⁾ alone is computed right after z⁽ˡ⁾: z⁽ˡ⁾ is then free for h⁽ˡ⁾ to overwrite.
    (relu′ is a boolean mask, a quarter or an eighth of the array it spares.) One that reads z⁽ˡ⁾ and
    h⁽ˡ⁾ (tanh(g(z))′ = (1 − h²) g′(z)) is computed right after h⁽ˡ⁾, while both are still in cache, and
    z⁽ˡ⁾ is then free for it."""
    layers = range(1, depth + 1)
    pre = {naming.derivative_block(l): f"z{l}" for l in layers}
    post = {naming.derivative_block(l): naming.activation_block(l, l == depth) for l in layers}
    training, rest = list(forward), []
    for s in backward:
        after = None
        if isinstance(s, Elementwise) and s.target in pre:
            z, h, reads = pre[s.target], post[s.target], _reads(s)
            after = z if reads == {z} else h if reads == {z, h} else None
        if after is not None and any(t.target == after for t in training):
            training.insert(next(i for i, t in enumerate(training) if t.target == after) + 1, s)
        else:
            rest.append(s)
    return training, rest


@cache
def is_z_times_derivative(h: sp.Expr, dh: sp.Expr) -> bool:
    """h(u) = u·dh(u) for every real u, by SymPy: as it stands (|u| = u·sign(u)), or over the pieces of a
    Max or Piecewise."""
    difference = (h - U * dh).xreplace({U: sp.Dummy("u", real=True)})
    return any(sp.simplify(form) == 0 for form in (difference, difference.rewrite(sp.Piecewise)))


def _with_activations_from_derivatives(training: list, depth: int) -> list:
    """h⁽ˡ⁾ = z⁽ˡ⁾ ⊙ σ′(z⁽ˡ⁾) where σ′ in z alone comes before h⁽ˡ⁾ and σ(u) = u·σ′(u) checks."""
    out = list(training)
    for l in range(1, depth + 1):
        z, dact = f"z{l}", naming.derivative_block(l)
        h = naming.activation_block(l, l == depth)
        at = {s.target: i for i, s in enumerate(out)}
        if dact not in at or h not in at or at[dact] > at[h]:
            continue
        ds, hs = out[at[dact]], out[at[h]]
        if (isinstance(hs, Elementwise) and hs.args == ((U, z),) and hs.expr != U and ds.args == ((U, z),)
                and is_z_times_derivative(hs.expr, ds.expr)):
            out[at[h]] = Elementwise(h, U * V, ((U, z), (V, dact)), from_derivative=True)
    return out


def _with_reuse(training: list, loss_reads: frozenset[str], backward: list, depth: int) -> tuple[list, list]:
    """An array takes over the memory of one of its shape that nothing reads from there on: h⁽ˡ⁾ that of
    z⁽ˡ⁾, δ⁽ˡ⁾ that of h⁽ˡ⁾ or z⁽ˡ⁾. Names that share memory (h = z for the identity, or an earlier
    reuse) are freed together, and reads at the statement itself count (it reads before it writes)."""
    layers = range(1, depth + 1)
    activations = {naming.activation_block(l, l == depth) for l in layers}
    spares = {naming.delta(l): (naming.activation_block(l, l == depth), f"z{l}") for l in layers}
    derivatives = {naming.derivative_block(l): f"z{l}" for l in layers}
    steps = [*training, loss_reads, *backward]
    reads = [set(s) if isinstance(s, frozenset) else _reads(s) for s in steps]
    memory: dict[str, str] = {}  # array name -> the name of the allocation it lives in

    def free(name: str, start: int) -> bool:
        sharing = {n for n, m in memory.items() if m == memory.get(name)}
        return name in memory and not any(sharing & r for r in reads[start:])

    out = []
    for i, s in enumerate(steps):
        if isinstance(s, Elementwise) and s.target in activations:
            arg = dict(s.args)[U]  # z⁽ˡ⁾ (beside σ′ for an activation computed from its derivative)
            if s.expr == U:  # h = z: one array, two names
                memory[s.target] = memory[arg]
                out.append(s)
                continue
            if free(arg, i + 1):
                s = dataclasses.replace(s, reuse=arg)
        elif (isinstance(s, Elementwise) and s.target in derivatives and len(reads[i]) > 1
              and derivatives[s.target] in reads[i] and free(derivatives[s.target], i + 1)):
            s = dataclasses.replace(s, reuse=derivatives[s.target])  # σ′ in h and z takes z's memory
        elif isinstance(s, Block) and s.kind == "delta":
            spare = next((n for n in spares[s.target] if free(n, i)), None)
            if spare is not None:
                s = dataclasses.replace(s, reuse=spare)
        if not isinstance(s, frozenset):
            reuse = getattr(s, "reuse", None)
            memory[s.target] = memory[reuse] if reuse else s.target
        out.append(s)
    at = len(training)
    return out[:at], out[at + 1:]


def code_step(chain, shape: tuple[int, int]):
    """The last step shaped like the quantity (`shape`, the parameter's or δ's): code returns gradients in
    the parameters' shapes. In numerator layout a bias's chain gives only the row δᵀ: its transpose."""
    blocks = [s for s in chain.steps if not s.explicit and s.rule != "numerator layout"]
    # a 1 × 1 δᵀ has the shape of δ too: the code wants the vector itself, not its transpose
    shaped = [s for s in blocks if s.rhs.shape == shape and not isinstance(s.rhs, sp.Transpose)]
    if shaped:
        return shaped[-1]
    last = blocks[-1]
    return dataclasses.replace(last, lhs=last.lhs.T, rhs=last.rhs.T)


def code_form(chain, shape: tuple[int, int]) -> sp.MatrixExpr:
    return code_step(chain, shape).rhs


# ------------------------------------------------------------------------------------------------
# Straight-line code for one example of a small network: the same compact forms, unit by unit.

SCALAR_LIMIT = 64  # parameters; beyond this, array code is as fast for one example
SCALAR_WIDTH = 5   # units per layer; wider layers make long lines of code


def wants_scalar(d: Derivation) -> bool:
    return scalar_size(d) <= SCALAR_LIMIT and max(d.spec.widths) <= SCALAR_WIDTH


@dataclass(frozen=True)
class ScalarSoftmax:
    """outputs = softmax(inputs), shifted by their maximum; `lse` = log Σ exp(inputs)."""

    outputs: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...]
    lse: sp.Symbol


@dataclass(frozen=True)
class ScalarProgram:
    params: tuple[tuple[str, tuple[sp.Symbol, ...]], ...]  # name -> its entries in storage order
    x: tuple[sp.Symbol, ...]
    y: tuple[sp.Symbol, ...]
    forward: tuple[tuple[sp.Symbol, sp.Expr] | ScalarSoftmax, ...]
    loss: sp.Expr
    backward: tuple[tuple[sp.Symbol, sp.Expr], ...]
    grads: tuple[tuple[str, tuple[sp.Symbol, ...]], ...]  # name -> gradient entries in storage order


def scalar_size(d: Derivation) -> int:
    return sum(len(layer.W) + len(layer.b or ()) for layer in d.network.layers)


def build_scalar_program(d: Derivation) -> ScalarProgram:
    """Every statement of the array program, written out per component (needs the full-size derivation)."""
    from derive.identities import evaluate

    net, blocks = d.network, d.blocks
    params, forward = [], []
    for layer in net.layers:
        params.append((f"W{layer.index}", tuple(layer.W)))
        if layer.b is not None:
            params.append((f"b{layer.index}", tuple(layer.b)))
        forward += list(zip(layer.z, layer.z_exprs))
        if layer.activation.elementwise:
            forward += list(zip(layer.h, layer.h_exprs))
        else:
            assert is_softmax(layer.h_exprs, layer.z)
            forward.append(ScalarSoftmax(layer.h, layer.z, sp.Symbol(f"lse{layer.index}")))
    loss, from_logits = loss_in_logits(d)
    if from_logits:
        loss = loss.xreplace({LSE: sp.Symbol(f"lse{net.depth}")})

    backward: list[tuple[sp.Symbol, sp.Expr]] = []
    used: set[str] = set()
    chains = [*d.deltas, *d.gradients]
    for chain in chains:
        used |= {b.name for b in code_form(chain, d.blocks[chain.target].shape).atoms(sp.MatrixSymbol)}
    component_env = {}
    for name in used:  # blocks computed in this program stand for their own component symbols
        if name == naming.LOSS_GRADIENT or name.startswith(("dact", "delta")):
            shape = blocks.values[name].shape
            component_env[name] = sp.ImmutableMatrix(
                *shape, [sp.Symbol(naming.component(name, i + 1)) for i in range(shape[0] * shape[1])])
    env = blocks.env(**component_env)
    for name in sorted(component_env, key=lambda n: (n != naming.LOSS_GRADIENT, not n.startswith("dact"), n)):
        if name == naming.LOSS_GRADIENT or name.startswith("dact"):
            backward += list(zip(component_env[name], blocks.values[name]))
    grads = []
    for chain in d.deltas:
        backward += list(zip(component_env.get(chain.target, blocks.values[chain.target]),
                             evaluate(code_form(chain, d.blocks[chain.target].shape), env)))
    for chain in d.gradients:
        entries = evaluate(code_form(chain, d.blocks[chain.target].shape), env)
        names = tuple(sp.Symbol(f"d{s.name}") for s in dict(params)[chain.target])
        backward += list(zip(names, entries))
        grads.append((chain.target, names))
    # dact and ∂L/∂ŷ entries are needed before the δ that uses them: order by first use.
    return ScalarProgram(tuple(params), net.x, net.y, tuple(forward), loss, _ordered(backward), tuple(grads))


def _ordered(statements: list[tuple[sp.Symbol, sp.Expr]]) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
    """Statements in an order where each name is defined before it is read."""
    pending = list(statements)
    defined_by = {s: e for s, e in statements}
    out, done = [], set()
    while pending:
        progressed = False
        for item in list(pending):
            needs = {s for s in item[1].free_symbols if s in defined_by}
            if needs <= done:
                out.append(item)
                done.add(item[0])
                pending.remove(item)
                progressed = True
        assert progressed, "circular statements"
    return tuple(out)
