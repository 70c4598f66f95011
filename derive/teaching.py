"""The seeds' teaching devices, each derived from the explicit derivation and checked:

- the sum over paths at one hidden unit, ∂L/∂hⱼ = Σₘ ∂L/∂zₘ ∂zₘ/∂hⱼ, from the Jacobian's column, before
  it is stacked into Wᵀδ (seeds 001, 003, 004);
- one hidden unit worked with scalars, before the layer is stacked into matrices (seed 001);
- which entries of a Jacobian are zero, and why, before its values (seed 000);
- the column of the flattened-weight Jacobian for one weight, and that weight's gradient (seed 004);
- one generic entry of every step in index notation, at any size (seed 002), and the δ recursion for
  any depth;
- the summary of every result with its chain (seed 002's table), and the activations' derivative
  identities (σ′ = h(1 − h)).

Each is shown once, at one layer (`display.focus_layer`, or the first layer met going backward whose
weight has two rows and two columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import naming
from derive.activations import H, Z
from derive.chain import Chain, Step, _flatten
from derive.checks import DIFFERENTIATED, Check, all_of
from derive.identities import entry_is_zero, equal, evaluate
from derive.index_form import IndexForms, index_forms
from derive.jacobians import LocalJacobian


@dataclass(frozen=True)
class Dependency:
    """A Jacobian's entries as partial derivatives, and which of them are zero: before its values."""

    jacobian: str                  # the LocalJacobian's name
    partials: sp.ImmutableMatrix   # ∂(of)_r/∂(wrt)_c, unevaluated
    zero: tuple[tuple[bool, ...], ...]
    check: Check


@dataclass(frozen=True)
class WeightColumn:
    """∂z/∂W_ij for one weight: one column of the flattened Jacobian; then ∂L/∂W_ij = δᵀ times it."""

    layer: int
    weight: sp.Symbol
    column: Step                   # ∂z⁽ˡ⁾/∂W_ij = [0, a_j, 0]ᵀ
    gradient: Step                 # ∂L/∂W_ij = δᵀ [..] = δ_i a_j


@dataclass(frozen=True)
class SumOverPaths:
    """∂L/∂h_j at one unit: the sum over the units of the next layer, each path's term, then its value."""

    layer: int
    unit: int
    paths: int
    terms: Step                    # ∂L/∂h_j = Σₘ δₘ ∂zₘ/∂h_j
    weights: Step                  # = Σₘ δₘ Wₘⱼ: each path's local derivative is its weight
    value: Step                    # = δ₁W₁ⱼ + δ₂W₂ⱼ + …


@dataclass(frozen=True)
class ScalarUnit:
    """One hidden unit's gradients with scalars: ∂L/∂z_j, each ∂L/∂W of the unit, ∂L/∂b_j."""

    layer: int
    unit: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class DerivativeIdentity:
    """σ′(z) by differentiation, and where it reads the output, σ′ written in h (checked by SymPy)."""

    layers: tuple[int, ...]
    derivative: Step               # σ′(z) = …
    output_form: Step | None       # σ′(z) = h(1 − h)


@dataclass(frozen=True)
class SummaryRow:
    chain: Chain
    check: Check


@dataclass(frozen=True)
class Recursion:
    """δ⁽ˡ⁾ for any depth: layer `template`'s compact form read with labels l and l + 1."""

    template: int
    step: Step
    check: Check


@dataclass(frozen=True)
class GeneralForm:
    """A result for any layer l: layer `template`'s compact form, read with labels l − 1, l, l + 1 (the
    output layer's, with its own label N). Its check: it is every layer's own verified result."""

    name: str                      # start (δ of the output layer), delta, weight, bias
    template: int
    step: Step
    check: Check


@dataclass(frozen=True)
class ParameterChain:
    """One parameter's whole chain of local Jacobians, and how much of it is δ's: the redundant
    computation that backprop does once (seed 000)."""

    param: str                     # W1, b1
    lhs: sp.MatrixExpr             # the row the chain gives: ∂L/∂vec(W), ∂L/∂b or its transpose
    factors: tuple[str, ...]       # Jacobian names, from the loss down
    shared: int                    # the leading factors that make up δ⁽ˡ⁾ᵀ
    delta: str
    check: Check


@dataclass(frozen=True)
class Teaching:
    focus: int
    dependencies: tuple[Dependency, ...]
    weight_column: WeightColumn | None
    paths: SumOverPaths | None
    unit: ScalarUnit | None
    index: IndexForms | None
    recursion: Recursion | None
    summary: tuple[SummaryRow, ...]
    derivatives: tuple[DerivativeIdentity, ...]
    general: tuple[GeneralForm, ...] = ()
    chains: tuple[ParameterChain, ...] = ()

    @property
    def checks(self) -> list[Check]:
        out = [d.check for d in self.dependencies]
        if self.weight_column:
            out += [self.weight_column.column.check, self.weight_column.gradient.check]
        if self.paths:
            out += [self.paths.terms.check, self.paths.weights.check, self.paths.value.check]
        if self.unit:
            out += [s.check for s in self.unit.steps]
        if self.recursion:
            out.append(self.recursion.check)
        out += [g.check for g in self.general] + [c.check for c in self.chains]
        out += [r.check for r in self.summary]
        for d in self.derivatives:
            out += [d.derivative.check] + ([d.output_form.check] if d.output_form else [])
        return out

    @property
    def verified(self) -> bool:
        return all(c.passed for c in self.checks) and (self.index is None or self.index.verified)


def focus_layer(d) -> int:
    chosen = d.spec.display.focus_layer
    if chosen:
        return chosen
    for layer in reversed(d.network.layers):
        if layer.W.rows > 1 and layer.W.cols > 1:
            return layer.index
    return d.network.depth


# ------------------------------------------------------------------------------------------------


def dependency(jac: LocalJacobian, of_exprs, wrt_symbols) -> Dependency:
    """Entry (r, c) is zero wherever expression r does not contain variable c (a derivative may be 0
    elsewhere too: a step's is). Checked for every entry."""
    of_symbols = list(of_exprs.keys())
    partials = sp.ImmutableMatrix(len(of_symbols), len(wrt_symbols),
                                  lambda r, c: sp.Derivative(of_symbols[r], wrt_symbols[c], evaluate=False))
    zero = tuple(tuple(wrt_symbols[c] not in of_exprs[of_symbols[r]].free_symbols for c in range(len(wrt_symbols)))
                 for r in range(len(of_symbols)))
    ok = all(jac.matrix[r, c] == 0 for r in range(len(zero)) for c in range(len(zero[0])) if zero[r][c])
    return Dependency(jac.name, partials, zero, Check("dependency", ok))


def _dependencies(d, l: int) -> tuple[Dependency, ...]:
    net = d.network
    layer = net.layers[l - 1]
    out = []
    act = d.jacobians.activation[l]
    if act.structure == "diagonal" and layer.n_out > 1:
        out.append(dependency(act, dict(zip(layer.h, layer.h_exprs)), list(layer.z)))
    if layer.n_out > 1:  # with one unit, no entry of ∂z/∂vec(W) is zero: nothing to look at first
        wjac = d.jacobians.weights[l]
        flat = _flatten(layer.W, d.spec.vec)
        out.append(dependency(wjac, dict(zip(layer.z, layer.z_exprs)), flat))
    return tuple(out)


def _weight_column(d, l: int) -> WeightColumn:
    net, blocks = d.network, d.blocks
    layer = net.layers[l - 1]
    column = d.spec.convention == "column"
    # the weight into the second unit from the first input (w₂₁, as seed 004 takes it) where there is one
    out_unit = min(2, layer.n_out) - 1
    weight = layer.W[out_unit, 0] if column else layer.W[0, out_unit]
    flat = _flatten(layer.W, d.spec.vec)
    wjac = d.jacobians.weights[l]
    col = sp.ImmutableMatrix(wjac.matrix[:, flat.index(weight)])
    direct = sp.ImmutableMatrix([sp.diff(e, weight) for e in layer.z_exprs])
    if not column:
        col, direct = col.T, direct.T
    z_block = blocks[f"z{l}"]
    column_step = Step("differentiation", sp.Derivative(z_block, weight, evaluate=False), col,
                       Check("differentiation", equal(col, direct), "the column of vec(W) for this weight"))
    delta = blocks.values[naming.delta(l)]
    value = sp.expand((delta.T * col if column else delta * col.T)[0, 0])
    grad = d.layer(l).weight
    regrouped = next(s.rhs for s in grad.steps if s.rule == "regrouped")
    r, c = (out_unit, 0) if column else (0, out_unit)
    gradient_step = Step("multiplied out", sp.Derivative(sp.Symbol("L"), weight, evaluate=False), value,
                         Check("expand", entry_is_zero(value - regrouped[r, c]),
                               "the same entry of the regrouped gradient"))
    return WeightColumn(l, weight, column_step, gradient_step)


def _paths_layer(d) -> int | None:
    """The hidden layer for the sum over paths: the focus layer's input layer, or the first hidden
    layer going backward whose next layer has two units or more."""
    widths = d.spec.widths
    candidates = [l for l in range(d.network.depth - 1, 0, -1) if widths[l + 1] > 1]
    return candidates[0] if candidates else None


def _sum_over_paths(d, l: int) -> SumOverPaths:
    net, blocks = d.network, d.blocks
    layer, nxt = net.layers[l - 1], net.layers[l]
    j = 0
    h_j = layer.h[j]
    m = sp.Idx("m", (1, nxt.n_out))
    delta_next = sp.IndexedBase(naming.delta(l + 1))
    z_next = sp.IndexedBase(f"z{l + 1}")
    lhs = sp.Symbol(naming.component(naming.upstream(l), j + 1))
    terms = sp.Sum(delta_next[m] * sp.Derivative(z_next[m], h_j, evaluate=False), (m, 1, nxt.n_out))
    readers = net.readers()[h_j]
    terms_step = Step("chain rule", lhs, terms,
                      Check("chain rule", readers <= {f"z{l + 1}"}, f"{h_j} is read only by z{l + 1}"))
    jac = d.jacobians.inputs[l + 1].matrix
    W_next = sp.IndexedBase(f"W{l + 1}")
    w_mj = W_next[m, j + 1] if d.spec.convention == "column" else W_next[j + 1, m]
    own = all(jac[k, j] == (nxt.W[k, j] if d.spec.convention == "column" else nxt.W[j, k]) for k in range(nxt.n_out))
    weights_step = Step("differentiation", lhs, sp.Sum(delta_next[m] * w_mj, (m, 1, nxt.n_out)),
                        Check("differentiation", own, "each ∂zₘ/∂hⱼ is the weight from unit j to unit m"))
    deltas = list(blocks.values[naming.delta(l + 1)])
    value = sp.Add(*[deltas[k] * jac[k, j] for k in range(nxt.n_out)])
    upstream_row = d.layer(l).upstream.local
    value_step = Step("summed out", lhs, value,
                      Check("expand", entry_is_zero(value - upstream_row[0, j]),
                            "the Jacobian's column, against the same entry of the product"))
    return SumOverPaths(l, j + 1, nxt.n_out, terms_step, weights_step, value_step)


def _scalar_unit(d, l: int) -> ScalarUnit | None:
    net, blocks = d.network, d.blocks
    layer = net.layers[l - 1]
    act = d.jacobians.activation[l]
    if act.structure not in ("diagonal", "identity"):
        return None
    j = 0
    column = d.spec.convention == "column"
    up = sp.Symbol(naming.component(naming.upstream(l), j + 1))
    delta_j = sp.Symbol(naming.component(naming.delta(l), j + 1))
    chain = d.layer(l)
    delta_local = chain.delta.local
    steps = []
    value = up * act.matrix[j, j]
    steps.append(Step("chain rule", delta_j, value,
                      Check("expand", entry_is_zero(value - (delta_local[0, j] if delta_local is not None else up)),
                            "the same entry of δ's product")))
    regrouped = next(s.rhs for s in chain.weight.steps if s.rule == "regrouped")
    inputs = blocks.values[naming.input_block(l)]
    for k in range(layer.n_in):
        w = layer.W[j, k] if column else layer.W[k, j]
        entry = regrouped[j, k] if column else regrouped[k, j]
        v = delta_j * list(inputs)[k]
        steps.append(Step("chain rule", sp.Derivative(sp.Symbol("L"), w, evaluate=False), v,
                          Check("expand", entry_is_zero(v - entry), "the same entry of the regrouped gradient")))
    if layer.b is not None:
        b = layer.b[j]
        steps.append(Step("chain rule", sp.Derivative(sp.Symbol("L"), b, evaluate=False), delta_j,
                          Check("expand", True, "∂z/∂b is 1 for its own unit")))
    return ScalarUnit(l, j + 1, tuple(steps))


def _derivative_identities(d) -> tuple[DerivativeIdentity, ...]:
    groups: dict[object, list[int]] = {}
    acts = {}
    for layer in d.network.layers:
        act = layer.activation
        if act.elementwise and not act.is_identity:
            groups.setdefault(act.formula, []).append(layer.index)
            acts[act.formula] = act
    out = []
    for formula, layers in groups.items():
        act = acts[formula]
        prime = sp.Function("prime")(Z)  # σ′(z), written by the printers with the layer's name
        derivative = Step("differentiation", prime, act.derivative, DIFFERENTIATED)
        form = act.output_form
        output = None
        if form is not None:
            # The identity was checked by SymPy when it was found (activations.output_form_of); once
            # more here, as it is displayed.
            ok = sp.simplify(form.xreplace({H: formula}) - act.derivative) == 0
            output = Step("differentiation", prime, form, Check("identity", ok, "h = σ(z) put back"))
        out.append(DerivativeIdentity(tuple(layers), derivative, output))
    return tuple(out)


def _recursion(d, index: IndexForms | None) -> Recursion | None:
    """δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ δ⁽ˡ⁺¹⁾) ⊙ σ′(z⁽ˡ⁾) for any depth, where every hidden layer takes that step: proved
    by the index form at any size, and it is each hidden layer's own verified result."""
    net = d.network
    if net.depth < 2:
        return None
    rules = set()
    for l in range(1, net.depth):
        names = [s.rule for s in d.delta(l).steps if not s.explicit]
        rules.add(names[-2] if len(names) > 1 else "")
    if rules != {"diagonal to Hadamard"}:
        return None  # the hidden layers do not all take the same step
    hidden = {l: d.delta(l) for l in range(1, net.depth)}
    same = _same_for_every_layer(d, hidden, 1)
    index_ok = index is None or (index.step("delta").check.passed and index.step("upstream").check.passed)
    layers = ", ".join(str(l) for l in hidden)
    return Recursion(1, hidden[1].final, Check("instances", same and index_ok, f"layers {layers}"))


def _relabel(d, template: int, l: int) -> dict[sp.MatrixSymbol, sp.MatrixSymbol]:
    """Layer `template`'s blocks to layer l's: its weight, bias, δ, σ′ and input, and the layer above's."""
    blocks = d.blocks
    pairs = [(f"W{template}", f"W{l}"), (f"b{template}", f"b{l}"), (naming.delta(template), naming.delta(l)),
             (naming.derivative_block(template), naming.derivative_block(l)),
             (naming.input_block(template), naming.input_block(l)),
             (f"W{template + 1}", f"W{l + 1}"), (naming.delta(template + 1), naming.delta(l + 1))]
    return {blocks[a]: blocks[b] for a, b in pairs if a in blocks.symbols and b in blocks.symbols}


def _same_for_every_layer(d, chains: dict[int, Chain], template: int) -> bool:
    """Layer `template`'s compact form, relabelled, is each layer's own verified compact form."""
    base = chains[template].compact
    for l, chain in chains.items():
        try:
            relabelled = base.xreplace(_relabel(d, template, l))
        except (sp.ShapeError, ValueError, TypeError):
            return False
        env = d.blocks.env()
        if not chain.verified or not equal(evaluate(relabelled, env), evaluate(chain.compact, env)):
            return False
    return True


def _general(d, recursion: Recursion | None) -> tuple[GeneralForm, ...]:
    """The results for any layer: δ at the output, the δ recursion, ∂L/∂W⁽ˡ⁾ and ∂L/∂b⁽ˡ⁾ (read off
    a layer that takes a hidden layer's output, so that its input is h⁽ˡ⁻¹⁾, not x)."""
    net = d.network
    if net.depth < 2:
        return ()
    out = []
    start = d.delta(net.depth)
    out.append(GeneralForm("start", net.depth, start.final, all_of("steps", [s.check for s in start.steps])))
    if recursion is not None:
        out.append(GeneralForm("delta", recursion.template, recursion.step, recursion.check))
    weights = {l: d.gradient(f"W{l}") for l in range(1, net.depth + 1)}
    detail = "layers " + ", ".join(map(str, weights))
    out.append(GeneralForm("weight", 2, weights[2].final,
                           Check("instances", _same_for_every_layer(d, weights, 2), detail)))
    biases = {l: d.gradient(f"b{l}") for l in range(1, net.depth + 1) if net.layers[l - 1].b is not None}
    if len(biases) == net.depth:
        # read off a layer of two units or more: a single unit's δ⁽ˡ⁾ᵀ and δ⁽ˡ⁾ are one number, and its
        # form would not say which the general layer has
        template = next((l for l in (*range(2, net.depth + 1), 1) if net.layers[l - 1].n_out > 1), 2)
        out.append(GeneralForm("bias", template, biases[template].final,
                               Check("instances", _same_for_every_layer(d, biases, template), detail)))
    return tuple(out)


def _parameter_chains(d) -> tuple[ParameterChain, ...]:
    out = []
    for chain in (c for layer in d.backward for c in (layer.weight, layer.bias) if c is not None):
        delta = d.delta(chain.layer)
        shared = len(delta.full_chain)
        same = chain.full_chain[:shared] == delta.full_chain and len(chain.full_chain) == shared + 1
        check = Check("chain rule", same and chain.verified and delta.verified,
                      f"the first {shared} factors are the chain that gives this layer's error")
        out.append(ParameterChain(chain.target, chain.steps[0].lhs, chain.full_chain, shared,
                                  naming.delta(chain.layer), check))
    return tuple(out)


def teaching(d) -> Teaching:
    spec, net = d.spec, d.network
    show = spec.display
    focus = focus_layer(d)
    paths_at = _paths_layer(d)
    # Derived whatever the display shows (`display.index_form` says whether its section is shown): the
    # δ recursion's check and a softmax output's entry read it.
    hidden = net.layers[:-1]
    elementwise = all(layer.activation.elementwise for layer in hidden)
    last = net.layers[-1].activation
    output = None if last.is_identity else ("elementwise", False) if last.elementwise else \
        ("softmax", net.loss.name == "ce", spec.loss.target == "index")
    widths = spec.widths
    l = paths_at or 1
    sizes = (widths[l - 1], widths[l], widths[l + 1] if l + 1 < len(widths) else widths[l])
    index = index_forms(spec.convention, spec.vec, sizes, elementwise, output,
                        any(layer.b is not None for layer in net.layers))
    # δ and the parameters' gradients, as seed 002's table has them; ∂L/∂h is a step on the way.
    summary = tuple(SummaryRow(c, all_of("steps", [s.check for s in c.steps])) for c in d.chains
                    if c.kind in ("delta", "weight", "bias") and c.compact is not None)
    recursion = _recursion(d, index)
    return Teaching(
        focus=focus,
        dependencies=_dependencies(d, focus) if show.dependency else (),
        weight_column=_weight_column(d, focus) if show.weight_column else None,
        paths=_sum_over_paths(d, paths_at) if show.paths and paths_at else None,
        unit=_scalar_unit(d, paths_at or focus) if show.unit and (paths_at or focus) < net.depth else None,
        index=index,
        recursion=recursion,
        summary=summary,
        derivatives=_derivative_identities(d),
        general=_general(d, recursion),
        chains=_parameter_chains(d) if show.chains else (),
    )
