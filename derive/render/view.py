"""The derivation as strings, ready for a template: the same model for the terminal and for LaTeX.

Only printing happens here: every expression comes finished from the Derivation, and a printer (text
or LaTeX) writes it in the spec's notation. Matrices are laid out by the caller's `matrix` function.
Every formula the view carries is one of the derivation's, with the check that proved it: a line is
a dict with "lhs" and "check" ("passed", "method").

The backward pass is laid out as the seeds teach it: for each layer from the output down, the
gradient it receives (∂L/∂ŷ or ∂L/∂h⁽ˡ⁾, with the Jacobian that brings it), then δ⁽ˡ⁾ (with the
activation's Jacobian), then ∂L/∂W⁽ˡ⁾ and ∂L/∂b⁽ˡ⁾; each rule's reason is given at its first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive import naming
from derive.activations import H, Z
from derive.chain import Chain, Step
from derive.checks import DEFINITION, METHODS, Check
from derive.derivation import Derivation
from derive.naming import Display, function_names

CONVENTION_TEXT = {
    "column": "column vectors, z = W a + b",
    "row": "row vectors, z = a W + b",
}


def generic_affine(d: Derivation, make_printer: Callable[[Display], Callable[[sp.Basic], str]]) -> str:
    """The convention's layer in the course's letters, z⁽ˡ⁾ = W⁽ˡ⁾ h⁽ˡ⁻¹⁾ + b⁽ˡ⁾ (row: h⁽ˡ⁻¹⁾ W⁽ˡ⁾ + b⁽ˡ⁾)."""
    n = sp.Symbol("n")
    column = d.spec.convention == "column"
    vector = (n, 1) if column else (1, n)  # the convention's vectors: columns, or rows
    W, a = sp.MatrixSymbol("W1", n, n), sp.MatrixSymbol("h0", *vector)
    b, z = sp.MatrixSymbol("b1", *vector), sp.MatrixSymbol("z1", *vector)
    product = sp.MatMul(W, a) if column else sp.MatMul(a, W)
    biased = any(layer.b is not None for layer in d.network.layers)
    printer = make_printer(_generic_display(d))
    return f"{printer(z)} = {printer(sp.MatAdd(product, b) if biased else product)}"


LAYOUT_TEXT = {
    "gradient": "gradients shaped like the parameter",
    "numerator": "numerator layout, as the Jacobian arranges it (a gradient has the transposed shape of its "
                 "parameter: the gradient of a column vector is a row)",
}
STRUCTURE_TEXT = {
    "row": "row vector",
    "identity": "identity",
    "diagonal": "diagonal",
    "softmax": "softmax",
    "dense": "dense",
    "flattened-weight": "flattened weight",
}


def picked(n: int, limit: int) -> list[int | None]:
    """Indices of a long side to show: all, or the first few, a gap (None), and the last."""
    if n <= limit:
        return list(range(n))
    return [*range(limit - 2), None, n - 1]


def _with_gaps(indices: list[int]) -> list[int | None]:
    out: list[int | None] = []
    for k in indices:
        if out and k != out[-1] + 1:
            out.append(None)
        out.append(k)
    return out


def elided(m: sp.MatrixBase, limit: int) -> tuple[list[int | None], list[int | None]]:
    """The rows and columns of a matrix to show (None: a gap). Beyond the first and last columns, a
    shown row whose non-zero entries all fall in the gap brings its first one: a row of I₃ ⊗ xᵀ must not
    read as all zeros."""
    rows, cols = picked(m.rows, limit), picked(m.cols, limit)
    if m.cols <= limit:
        return rows, cols
    keep = {j for j in cols if j is not None}
    for i in (i for i in rows if i is not None):
        if all(m[i, j] == 0 for j in keep):
            first = next((j for j in range(m.cols) if m[i, j] != 0), None)
            if first is not None:
                keep.add(first)
    return rows, _with_gaps(sorted(keep))


def position(k: int, n: int, real: int | None) -> int:
    """The 1-based index of entry k of a side of n, on a side that is really `real` long: a small
    instance's last entry stands for the real last one (see derive.sizes)."""
    return real if real is not None and k == n - 1 else k + 1


def display_for(derivation: Derivation) -> Display:
    n = derivation.spec.notation
    taken = {n.input, n.pre, n.post, n.target, n.weight, n.bias, n.loss, "g" if n.backward == "g" else ""}
    functions = function_names([layer.activation for layer in derivation.network.layers], taken)
    return Display(n, derivation.network.depth, functions, convention=derivation.spec.convention,
                   sizes=derivation.sizes)


@dataclass(frozen=True)
class Printers:
    expr: Callable[[sp.Basic], str]          # one expression (scalar or block)
    matrix: Callable[..., Any]               # an explicit matrix, laid out for the medium (and its real shape)
    display: Display
    latex: bool
    max_side: int = 6
    fits: Callable[[sp.MatrixBase], bool] = lambda m: True  # laid out as a grid, not entry by entry
    inline: Callable[..., Any] | None = None                # the same layout, ∂a/∂b written with a slash
    entry: Callable[[sp.Basic], str] | None = None          # one entry, a long sum shortened


def spoken_list(items: list[str]) -> str:
    """'1', '1 and 2', '1, 2 and 3'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _shape(m: sp.MatrixBase | tuple[int, ...]) -> str:
    rows, cols = m.shape if hasattr(m, "shape") else m
    return f"{rows}×{cols}"


def check_view(check: Check) -> dict[str, Any]:
    return {"passed": check.passed, "method": check.method, "detail": check.detail}


class _Builder:
    """Lines in display order; a rule's reason goes with its first use only."""

    def __init__(self, d: Derivation, p: Printers,
                 make_printer: Callable[[Display], Callable[[sp.Basic], str]] | None = None) -> None:
        self.d, self.p = d, p
        self.make_printer = make_printer
        self.sizes = d.sizes  # a wide network is shown through a small instance, relabelled
        self.seen: set[str] = set()
        self.methods: dict[str, None] = {}
        self.jac_names = {j.name: p.display.jacobian(j.of, j.wrt, p.latex) for j in d.local_jacobians}
        self.inline_jac_names = {j.name: p.display.jacobian(j.of, j.wrt, p.latex, inline=True)
                                 for j in d.local_jacobians}

    def reason(self, rule: str, text: str) -> str:
        if rule in self.seen:
            return ""
        self.seen.add(rule)
        return text

    def shown(self, e: sp.Basic) -> sp.Basic:
        """Components at the real widths (x₉ of a small instance is x₇₈₄)."""
        return self.sizes.rename(e) if self.sizes is not None else e

    def real_shape(self, shape: tuple[int, int], of: sp.Basic | None = None) -> tuple[int, int]:
        """A displayed quantity's shape at the real widths: a named block's by its name, else side by side."""
        return tuple(shape) if self.sizes is None else self.sizes.shape_of(of, shape)

    def value(self, rhs: sp.Basic, of: sp.Basic | None = None, shape: tuple[int, int] | None = None
              ) -> dict[str, Any]:
        """An explicit matrix laid out, a 1×1 one as a scalar, anything else printed; `of` (the lhs) or
        `shape` gives its real shape where a small instance stands for a wide network."""
        rhs = self.shown(rhs)
        if isinstance(rhs, sp.MatrixBase):
            real = shape or self.real_shape(rhs.shape, of)
            if rhs.shape == (1, 1):
                return {"rhs": self.p.expr(rhs[0, 0]), "matrix": None, "shape": "1×1"}
            return {"rhs": None, "matrix": self.p.matrix(rhs, real), "shape": _shape(real)}
        return {"rhs": self.p.expr(rhs), "matrix": None,
                "shape": _shape(self.real_shape(rhs.shape, of)) if hasattr(rhs, "shape") else ""}

    def line(self, lhs: sp.Basic | str, rhs: sp.Basic, check: Check, rule: str = "", reason: str = "",
             chain: str = "") -> dict[str, Any]:
        self.methods[check.method] = None
        return {"lhs": lhs if isinstance(lhs, str) else self.p.expr(self.shown(lhs)), "chain": chain,
                **self.value(rhs, None if isinstance(lhs, str) else lhs),
                "rule": rule, "reason": self.reason(rule, reason) if rule else "", "check": check_view(check)}

    def step(self, s: Step, chain: str = "") -> dict[str, Any]:
        return self.line(s.lhs, s.rhs, s.check, s.rule, s.reason, chain)

    def factor(self, name: str) -> str:
        if name in self.jac_names:
            return self.jac_names[name]
        return self.p.expr(self.d.blocks.as_row(self.d.blocks[name]))

    def chain_item(self, title: str, c: Chain, show_row: bool = True, brief: bool = False,
                   **extra: Any) -> dict[str, Any]:
        """A chain's lines, with what it results in (for the questions of an exercise sheet); `brief`:
        the block forms only, without the products written out entry by entry."""
        final = c.final or c.steps[-1]
        shape = final.rhs.shape if hasattr(final.rhs, "shape") else final.lhs.shape
        lines = self.chain_lines(c, show_row, skip_explicit=brief)
        return {"kind": "lines", "title": title, "lines": lines, **extra,
                "result": {"name": self.p.expr(final.lhs), "shape": _shape(self.real_shape(shape, final.lhs))}}

    def chain_lines(self, c: Chain, show_row: bool = True, skip_explicit: bool = False) -> list[dict[str, Any]]:
        """The chain's steps; the first one also shows the product of factor names it starts from."""
        names = " ".join(self.factor(f) for f in c.factors) if c.factors else ""
        if names and not self.p.latex:
            names = " · ".join(self.factor(f) for f in c.factors)
        out = []
        for k, s in enumerate(c.steps):
            if skip_explicit and s.explicit and k > 0:
                continue
            if s.rule == "multiplied out" and c.kind == "weight" and not show_row:
                continue  # the flattened row: shown once, at the focus layer
            if s.rule == "regrouped" and not show_row:  # the row not shown: its entries, in W's places
                s = dataclasses.replace(s, rule="multiplied out, regrouped")
            out.append(self.step(s, names if k == 0 else ""))
        return out

    def jacobian(self, name: str, dependency=None, brief: bool = False) -> dict[str, Any]:
        j = next(j for j in self.d.local_jacobians if j.name == name)
        real = self.sizes.jacobian_shape(j.of, j.wrt) if self.sizes is not None else j.matrix.shape
        check = Check("differentiation", True, "its structure read off by comparing the matrix with the block form")
        self.methods[check.method] = None
        item = {"kind": "jacobian", "name": self.jac_names[name], "of": j.of, "wrt": j.wrt,
                "block": "" if j.structure == "row" else self.p.expr(j.block),
                "shape": _shape(real), "structure": j.structure, "structure_text": STRUCTURE_TEXT[j.structure],
                "matrix": self.value(j.matrix, shape=real), "reason": "" if brief else j.reason,
                "check": check_view(check),
                "dependency": None, "brief": brief and bool(j.block)}
        if dependency is not None:
            self.methods[dependency.check.method] = None
            partials = dependency.partials
            shown = {"rhs": None, "matrix": self.p.inline(self.shown(partials), real), "shape": _shape(real)} \
                if self.p.inline else self.value(partials, shape=real)
            zeros = sum(row.count(True) for row in dependency.zero)
            rows, cols = real
            # each row has as many non-zero entries as the layer's input (a flattened weight) or one (a
            # diagonal): counted at the real widths
            per_row = (partials.rows * partials.cols - zeros) // partials.rows
            nonzero = rows * (cols // rows if j.structure == "flattened-weight" else per_row)
            item["dependency"] = {"partials": shown, "check": check_view(dependency.check),
                                  "lhs": item["name"], "zeros": rows * cols - nonzero, "entries": rows * cols}
        return item


def _derivative_item(b: _Builder, identity, d: Derivation) -> dict[str, Any]:
    p, disp = b.p, b.p.display
    l = identity.layers[0]
    function = disp.function(l, p.latex)
    tick = "'" if p.latex else "′"
    return {
        "kind": "derivative",
        "prime": f"{function}{tick}({p.expr(Z)})",
        "derivative": b.line(f"{function}{tick}({p.expr(Z)})", identity.derivative.rhs, identity.derivative.check),
        "output_form": b.line(f"{function}{tick}({p.expr(Z)})", identity.output_form.rhs, identity.output_form.check)
        if identity.output_form else None,
        "output_of": f"{p.expr(H)} = {function}({p.expr(Z)})",
        "layers": f"layer{'s' if len(identity.layers) > 1 else ''} "
                  f"{spoken_list([disp.label(x) for x in identity.layers])}",
    }


def backward_view(d: Derivation, b: _Builder) -> list[dict[str, Any]]:
    t = d.teaching
    p, disp = b.p, b.p.display
    show = d.spec.display
    deps = {dep.jacobian: dep for dep in t.dependencies}
    derivatives_left = {ident.layers[0]: ident for ident in t.derivatives}
    shown_functions: set[int] = set()
    sections = []
    full: set[str] = set()  # activation structures of the hidden layers already shown in full
    for lb in d.backward:
        l = lb.layer
        jac = d.jacobians
        items: list[dict[str, Any]] = []
        act = jac.activation[l]
        devices = {t.focus if (t.dependencies or t.weight_column or show.flattened_row) else None,
                   t.paths.layer if t.paths else None, t.unit.layer if t.unit else None}
        # A hidden layer that takes the steps of one shown above gives its results, not its entries again.
        brief = (l < d.network.depth and act.structure in full and l not in devices and not show.full_layers)
        if l < d.network.depth and not brief:
            full.add(act.structure)
        if l == d.network.depth:
            items.append(b.chain_item("loss", lb.upstream))
        else:
            items.append(b.jacobian(jac.inputs[l + 1].name, brief=brief))
            if t.paths is not None and t.paths.layer == l:
                pv = t.paths
                layer = d.network.layers[l - 1]
                items.append({"kind": "paths", "unit": p.expr(layer.h[pv.unit - 1]),
                              "next": p.expr(d.blocks[f"z{l + 1}"]), "paths": pv.paths,
                              "lines": [b.step(pv.terms), b.step(pv.weights), b.step(pv.value)]})
            items.append(b.chain_item("upstream", lb.upstream, brief=brief))
        for first, ident in list(derivatives_left.items()):
            if l in ident.layers and not (set(ident.layers) & shown_functions):
                items.append(_derivative_item(b, ident, d))
                shown_functions |= set(ident.layers)
                del derivatives_left[first]
        # One unit with scalars first (seed 001), then the layer stacked into matrices.
        # (not where a small instance stands for a wide layer: its input's weights are more than it lists)
        if t.unit is not None and t.unit.layer == l and d.sizes is None:
            items.append({"kind": "unit", "unit": str(t.unit.unit), "lines": [b.step(s) for s in t.unit.steps]})
        items.append(b.jacobian(act.name, deps.get(act.name) if t.focus == l else None, brief=brief))
        delta_item = b.chain_item("delta", lb.delta, brief=brief)
        entry = output_entry(d, b) if l == d.network.depth else None
        if entry is not None and len(delta_item["lines"]) > 1:
            # a softmax's fused δ: its entry derived in index notation before the stacked result
            items.append({**delta_item, "lines": delta_item["lines"][:-1]})
            items.append(entry)
            items.append({**delta_item, "lines": delta_item["lines"][-1:], "continued": True})
        else:
            items.append(delta_item)
        wjac = jac.weights[l]
        items.append(b.jacobian(wjac.name, deps.get(wjac.name) if t.focus == l else None, brief=brief))
        if t.weight_column is not None and t.weight_column.layer == l:
            wc = t.weight_column
            items.append({"kind": "column", "weight": p.expr(wc.weight),
                          "lines": [b.step(wc.column), b.step(wc.gradient)]})
        items.append(b.chain_item("weight", lb.weight, show_row=show.flattened_row and t.focus == l, brief=brief))
        if lb.bias is not None:
            items.append(b.chain_item("bias", lb.bias, bias_jacobian=b.inline_jac_names[jac.biases[l].name],
                                      brief=brief))
        for item in items:  # what an exercise sheet asks: every chain, and every Jacobian that is not I
            item["question"] = (item["kind"] == "lines" and not item.get("continued")) or (
                item["kind"] == "jacobian" and item["structure"] != "identity")
        heading = f"layer {disp.label(l)}" + (" (output)" if l == d.network.depth else "")
        sections.append({"layer": disp.label(l), "heading": heading, "output": l == d.network.depth,
                         "items": items, "brief": brief})
    return sections


def output_entry(d: Derivation, b: _Builder) -> dict[str, Any] | None:
    """One entry of a softmax output's δ, in index notation at any number of outputs, in the output
    layer's own label (the index form names the output layer 1)."""
    forms = d.teaching.index.output if d.teaching.index is not None else None
    if forms is None or d.network.layers[-1].activation.elementwise:
        return None
    printer = b.make_printer(_output_display(d, display_for(d).label(d.network.depth)))
    b.methods[forms.check.method] = None
    lhs = printer(forms.lhs)
    return {"kind": "entry", "lhs": lhs, "forms": [f for f in map(printer, forms.forms) if f != lhs],
            "check": check_view(forms.check), "label": d.spec.loss.target == "index"}


def _generic_display(d: Derivation, template: int = 1) -> Display:
    """Layer `template` read as a generic layer l: labels l − 1, l, l + 1; one function for every hidden
    layer, or σ_l."""
    display = display_for(d)
    hidden = set(display.functions[: d.network.depth - 1]) or {display.functions[0]}
    function = hidden.pop() if len(hidden) == 1 else "σ_l"
    t = template
    return dataclasses.replace(display, functions=(function,) * (t + 2), depth=99,
                               labels=((t - 1, "l−1"), (t, "l"), (t + 1, "l+1")))


def _output_display(d: Derivation, label: str | None = None) -> Display:
    """The index form's output layer (named layer 1 there) written N (L is the loss), or `label`."""
    display = display_for(d)
    label = label or d.spec.notation.output_layer or "N"
    return dataclasses.replace(display, functions=(display.functions[-1],), depth=1, labels=((1, label),))


def index_view(d: Derivation, p: Printers, make_printer: Callable[[Display], Callable[[sp.Basic], str]],
               b: _Builder) -> dict[str, Any] | None:
    forms = d.teaching.index
    if forms is None or not d.spec.display.index_form:
        return None
    generic = make_printer(_generic_display(d))
    steps = []
    for s in forms.steps:
        b.methods[s.check.method] = None
        lhs = generic(s.lhs)
        steps.append({"name": s.name, "lhs": lhs, "forms": [f for f in map(generic, s.forms) if f != lhs],
                      "check": check_view(s.check)})
    output = None
    # A softmax output's entry is derived in the output layer's section already.
    if forms.output is not None and d.network.layers[-1].activation.elementwise:
        out = make_printer(_output_display(d))
        b.methods[forms.output.check.method] = None
        lhs = out(forms.output.lhs)
        output = {"name": "output", "lhs": lhs, "forms": [f for f in map(out, forms.output.forms) if f != lhs],
                  "check": check_view(forms.output.check)}
    widths = _generic_display(d)
    i, j = sp.symbols("i j")
    return {"steps": steps, "output": output, "widths": [widths.width(k, p.latex) for k in range(3)],
            "kronecker": generic(sp.KroneckerDelta(i, j)),
            "input": widths.block("h0", p.latex), "x": disp_x(d, p)}


def disp_x(d: Derivation, p: Printers) -> str:
    return p.display.block("x", p.latex)


def delta_definition(d: Derivation, latex: bool, make_printer) -> str:
    """δ⁽ˡ⁾ = (∂L/∂z⁽ˡ⁾)ᵀ: the layer's error, a vector as the convention writes vectors."""
    generic = _generic_display(d)
    name = make_printer(generic)(d.blocks["delta1"])
    jac = generic.jacobian("L", "z1", latex)
    if d.spec.convention == "row":
        return f"{name} = {jac}"
    return f"{name} = \\left({jac}\\right)^{{\\top}}" if latex else f"{name} = ({jac})ᵀ"


def general_view(d: Derivation, make_printer, b: _Builder) -> list[dict[str, Any]]:
    """The results for any layer l, each in the labels of a generic layer (the output layer's as N)."""
    out = []
    for g in d.teaching.general:
        if g.name == "start":
            label = d.spec.notation.output_layer or "N"
            display = dataclasses.replace(display_for(d), labels=((d.network.depth, label),))
        else:
            display = dataclasses.replace(_generic_display(d, g.template), depth=d.network.depth)
        printer = make_printer(display)
        b.methods[g.check.method] = None
        out.append({"name": g.name, "lhs": printer(g.step.lhs), "rhs": printer(g.step.rhs),
                    "check": check_view(g.check)})
    return out


def chains_view(d: Derivation, b: _Builder) -> list[dict[str, Any]]:
    """Every parameter's chain, the factors that make up δ bracketed, then δᵀ times the last one."""
    p = b.p
    out = []
    for c in d.teaching.chains:
        b.methods[c.check.method] = None
        shared = list(c.factors[:c.shared])
        delta_row = p.expr(d.blocks.as_row(d.blocks[c.delta]))
        out.append({"lhs": p.expr(c.lhs), "shared": [b.factor(f) for f in shared], "delta": delta_row,
                    "last": b.factor(c.factors[-1]), "check": check_view(c.check)})
    return out


def example_view(d: Derivation, b: _Builder) -> dict[str, Any] | None:
    ex = d.example
    if ex is None:
        return None
    p = b.p

    def item(q):
        if "/" in q.name:
            name = b.jac_names[q.name]
        elif q.name.startswith(("W", "b")) and q.check is not None:
            name = p.display.block(naming.gradient_block(q.name), p.latex)
        elif q.name == naming.LOSS_GRADIENT:  # the row of the loss's Jacobian
            name = p.expr(b.d.blocks.as_row(b.d.blocks[q.name]))
        else:
            name = p.expr(b.d.blocks[q.name]) if q.name in b.d.blocks.symbols else q.name
        exact = q.exact
        decimal = None
        if q.is_exact and not all(e.is_Rational for e in exact):
            decimal = b.value(sp.ImmutableMatrix(exact.rows, exact.cols, lambda i, j: exact[i, j] if
                                                 exact[i, j].is_Integer else sp.Float(sp.N(exact[i, j], 6), 6)))
        # An exact entry longer than a short formula is given by its decimals alone (the JSON has it
        # exact); in a handout, so is a matrix of fractions wider than a vector, which fills a page.
        long = decimal is not None and (max(len(p.expr(e)) for e in exact) > 40 or (p.latex and exact.cols > 1))
        structure = next((j.structure for j in d.local_jacobians if j.name == q.name), "")
        out = {"lhs": name, "name": name, "exact": decimal if long else b.value(exact), "shape": _shape(exact),
               # a Jacobian that is W itself, or the layer's input repeated, brings no new number
               "repeats": structure in ("dense", "flattened-weight", "identity"),
               "decimal": None if long else decimal, "approximate": long,
               "check": check_view(q.check or DEFINITION)}
        return out

    layers = [{"heading": f"layer {p.display.label(layer.layer)}", "quantities": [item(q) for q in layer.quantities]}
              for layer in ex.backward]
    kinks = [{"z": p.expr(d.network.layers[k.layer - 1].z[k.unit - 1]), "value": p.expr(k.value),
              "derivative": p.expr(k.derivative), "function": p.display.function(k.layer, p.latex),
              "prime": p.display.derivative(k.layer, p.expr(k.value), p.latex)} for k in ex.kinks]
    b.methods["numbers"] = None
    return {
        "label": ex.label,
        "inputs": [item(q) for q in ex.inputs],
        "forward": [item(q) for q in ex.forward],
        "loss": p.expr(ex.loss),
        "loss_decimal": None if ex.loss.is_Integer else f"{float(sp.N(ex.loss, 17)):.6g}",  # L = 8, not ≈ 8
        "backward": layers,
        "agrees": ex.agrees,
        "kinks": kinks,
        "decimal_from": p.display.label(ex.decimal_from) if ex.decimal_from else None,
    }


def summary_view(d: Derivation, b: _Builder) -> list[dict[str, Any]]:
    rows = []
    for row in d.teaching.summary:
        c = row.chain
        b.methods[row.check.method] = None
        names = {j.name: b.p.display.jacobian(j.of, j.wrt, b.p.latex, inline=True) for j in d.local_jacobians}
        chain = (r" \cdot " if b.p.latex else " · ").join(names[f] for f in c.full_chain)
        # The chain gives the row the Jacobians arrange (δᵀ, ∂L/∂vec(W)): named as such beside it.
        rows.append({"lhs": b.p.expr(c.lhs), "chain": chain, "chain_lhs": b.p.expr(c.steps[0].lhs),
                     "compact": b.p.expr(c.compact),
                     "shape": _shape(b.real_shape(c.compact.shape, c.lhs)), "kind": c.kind,
                     "check": check_view(row.check)})
    return rows


def build_view(d: Derivation, p: Printers, make_printer: Callable[[Display], Callable[[sp.Basic], str]]
               ) -> dict[str, Any]:
    spec, net = d.spec, d.network
    disp = p.display
    b = _Builder(d, p, make_printer)
    layers = []
    for layer in net.layers:
        act = layer.activation
        function = disp.function(layer.index, p.latex)
        layers.append({
            "index": disp.label(layer.index),
            "units": spec.layers[layer.index - 1].units,  # the real width, where a small instance stands in
            "custom": act.user_defined,
            "activation": f"{function}({p.expr(Z)}) = {p.expr(act.formula)}" if act.user_defined else act.name,
            "function": function,
            "bias": layer.b is not None,
        })
    def components(symbols, exprs) -> list[tuple[str, str | None]]:
        """Unit by unit; a wide layer's first units, a gap (⋮, None) and its last."""
        return [("⋮", None) if k is None else (p.expr(b.shown(symbols[k])), (p.entry or p.expr)(b.shown(exprs[k])))
                for k in picked(len(symbols), p.max_side)]

    forward = []
    for fb in d.forward_blocks:
        layer = net.layers[fb.layer - 1]
        forward.append({
            "affine": f"{p.expr(fb.z)} = {p.expr(fb.affine)}",
            # a linear layer's output is its pre-activation: ŷ = z⁽²⁾, not id(z⁽²⁾)
            "activation": f"{p.expr(fb.h)} = {p.expr(fb.z)}" if layer.activation.is_identity else
            f"{p.expr(fb.h)} = {disp.function(fb.layer, p.latex)}({p.expr(fb.z)})",
            "z_components": components(layer.z, layer.z_exprs),
            "h_components": components(layer.h, layer.h_exprs),
            "check": check_view(fb.check),
        })
    b.methods["definition"] = None
    backward = backward_view(d, b)
    view = {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "input": spec.input,
        "input_name": disp.block("x", p.latex),
        "layers": layers,
        "loss_name": net.loss.name,
        # a loss averaged over the K outputs says what K is
        "loss_text": net.loss.description + (f", K = {spec.widths[-1]}" if "(1/K)" in net.loss.description else ""),
        "target_index": spec.loss.target == "index",
        "convention": f"{spec.convention} vectors, {generic_affine(d, make_printer)}",
        "affine": generic_affine(d, make_printer),
        "column": spec.convention == "column",
        "layout": LAYOUT_TEXT[spec.layout],
        "numerator": spec.layout == "numerator",
        "vec": spec.vec,
        "forward": forward,
        "loss": p.expr(d.loss.rhs),
        "loss_symbol": disp.letter("loss", p.latex),
        "loss_gradient": p.expr(d.blocks["gL"].T if spec.convention == "column" else d.blocks["gL"]),
        "backward": backward,
        "index": index_view(d, p, make_printer, b),
        "general": general_view(d, make_printer, b),
        "delta_row_name": make_printer(_generic_display(d))(d.blocks.as_row(d.blocks["delta1"])),
        "delta_definition": delta_definition(d, p.latex, make_printer),
        # the output layer is layer N however the notation writes it (o in W⁽ᵒ⁾)
        "output_label": disp.label(net.depth) if spec.notation.output_layer else "",
        "net_depth": net.depth,
        "input_as_h0": f"{make_printer(disp)(sp.MatrixSymbol('h0', 1, 1))} = {p.expr(d.blocks['x'])}",
        "chains": chains_view(d, b),
        "summary": summary_view(d, b),
        "example": example_view(d, b),
        "verified": d.verified,
        "step_count": sum(len(c.steps) for c in d.chains),
    }
    view["legend"] = [{"method": m, "text": METHODS[m]} for m in METHODS if m in b.methods]
    view["warnings"] = warnings(d, p)
    return view


def warnings(d: Derivation, p: Printers) -> list[str]:
    """What every output says up front: a loss that is never defined on the outputs."""
    if d.domain is None:
        return []
    units = ", ".join(p.display.component(s.name) for s in d.network.yhat) if not p.latex else \
        ", ".join(s.name for s in d.network.yhat)
    return [d.domain.text(units)]
