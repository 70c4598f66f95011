"""Thin subclasses of SymPy's printers that write symbols in a course's notation.

Only names and the order of a sum's terms change: SymPy decides the layout of every expression.
Templates use these as filters.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from derive.naming import Display

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_ACTIVATION = re.compile(r"act(\d+)")        # the activation of a layer in index notation
_PRE = re.compile(r"z(\d+)_\d+")             # a pre-activation component
_NATURAL = re.compile(r"(\d+)")


def _is_compound(expr: sp.Basic) -> bool:
    return isinstance(expr, sp.MatAdd | sp.MatMul | sp.HadamardProduct | sp.KroneckerProduct)


def _index_text(index: sp.Basic) -> str:
    """A summation index SymPy invented is written k; i and j stay as they are."""
    if isinstance(index, sp.Dummy):
        return "k"
    if isinstance(index, sp.Idx):
        return str(index.label)
    return str(index)


def step_condition(arg: sp.Expr) -> sp.Relational:
    """Where the step 1[arg > 0] is 1, as a board writes it: 1[z − 1 > 0] is 1[z > 1], 1[−z > 0] is
    1[z < 0]."""
    constant, rest = arg.as_coeff_Add()
    positive = sp.StrictGreaterThan(rest, -constant, evaluate=False)
    return positive.reversedsign if rest.could_extract_minus_sign() else positive


def signed_terms(expr: sp.MatAdd) -> list[tuple[bool, sp.MatrixExpr]]:
    """The terms of a block sum as (negative, term without its −1): a − b is written with a minus."""
    out = []
    for term in expr.args:
        negative = isinstance(term, sp.MatMul) and term.args[0] == -1
        out.append((negative, sp.MatMul(*term.args[1:]) if negative else term))
    return out


def _natural(name: str) -> tuple:
    """x_2 before x_10: digits compared as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in _NATURAL.split(name))


def board_order(terms: list[sp.Expr]) -> list[sp.Expr]:
    """A sum's terms as a board writes them: constants first, then by the indices of their symbols
    (x₂ before x₁₀), and a positive term at the front (ŷ₁ − y₁, not −y₁ + ŷ₁)."""
    def key(term: sp.Expr):
        names = sorted((s.name for s in term.free_symbols), key=_natural)
        return (bool(names), [_natural(n) for n in names], str(term))

    ordered = sorted(terms, key=key)
    if ordered and ordered[0].could_extract_minus_sign():
        first = next((t for t in ordered if not t.could_extract_minus_sign()), None)
        if first is not None:
            ordered.remove(first)
            ordered.insert(0, first)
    return ordered


_RECEIVED = re.compile(r"(delta|dL_dh)\d+(_\d+)?|gL")  # a gradient a step receives, or its components


def _rank(factor: sp.Basic) -> int:
    """Where a factor goes in a product, as the seeds write them: δ₁W₁₁, ∂L/∂h₁·σ′(z₁), δᵢ ∂zᵢ/∂Wⱼₖ,
    W₁₁x₁, the Kronecker delta last."""
    if factor.is_Number:
        return 0
    name = factor.name if isinstance(factor, sp.Symbol) else \
        str(factor.base.label) if isinstance(factor, sp.Indexed) else ""
    if _RECEIVED.fullmatch(name):
        return 1
    if name.startswith("W"):
        return 2
    if isinstance(factor, sp.KroneckerDelta):
        return 5
    if isinstance(factor, sp.Derivative):
        return 4
    return 3


def received_first(expr: sp.Expr) -> sp.Expr:
    """A product's factors in the order `_rank` gives (stable), as one unevaluated product. (SymPy's
    LaTeX printer hands 1/x to the product printer as a power: that stays as it is.)"""
    if not isinstance(expr, sp.Mul):
        return expr
    args = list(expr.args)
    ordered = sorted(args, key=_rank)
    return expr if ordered == args else sp.Mul._from_args(ordered)


MAX_TERMS = 6  # a longer sum in a matrix entry is shown by its first terms, a gap, and its last term


@contextmanager
def eliding(printer):
    """While the entries of a matrix are printed: long sums shortened, and ∂L/∂h₁ written with a
    slash, so that a matrix of them keeps the height of its rows."""
    before = printer.elide, printer.inline_partials
    printer.elide = printer.inline_partials = True
    try:
        yield printer
    finally:
        printer.elide, printer.inline_partials = before


class _Notation:
    """What both printers share: names from the notation, the board's order of terms, index notation."""

    display: Display
    latex: bool

    elide = False  # set while a matrix's entries are printed (`eliding`): a formula of its own stays whole
    inline_partials = False

    def _elided_sum(self, expr: sp.Add) -> str | None:
        """δ₁W₁₁ + δ₂W₂₁ + ⋯ + δ₆₄W₆₄,₁ for an entry that sums more than MAX_TERMS terms (the JSON has
        it whole)."""
        terms = board_order(list(expr.args))
        # where a small instance stands for a wide network, a long sum runs over a narrowed layer: its
        # terms shown are not all of them, so it is always written with its gap
        if not (self.elide or self.display.sizes is not None) or len(terms) <= MAX_TERMS:
            return None
        shown = [*terms[:2], terms[-1]]
        parts = [self._print(t) for t in shown]
        gap = r"\cdots" if self.latex else "⋯"
        out = parts[0]
        for k, (t, text) in enumerate(zip(shown[1:], parts[1:]), start=1):
            if k == 2:
                out += f" + {gap}"
            out += f" - {self._print(-t)}" if t.could_extract_minus_sign() else f" + {text}"
        return out

    def _print(self, expr, **kwargs) -> str:
        if isinstance(expr, sp.Indexed):  # Indexed prints itself as z1[i] otherwise (its _sympystr)
            return self._print_Indexed(expr)
        return super()._print(expr, **kwargs)

    def _as_ordered_terms(self, expr, order=None):
        if isinstance(expr, sp.Add):
            return board_order(list(expr.args))
        return super()._as_ordered_terms(expr, order=order)

    def _print_MatrixElement(self, expr) -> str:
        parent, i, j = expr.args
        rows, cols = parent.shape
        indices = tuple(_index_text(x) for x, n in ((i, rows), (j, cols)) if n != 1)
        return self.display.entry(parent.name, indices, latex=self.latex)

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return self.display.block(expr.name, latex=self.latex)

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        return self.display.entry(str(expr.base.label), tuple(self._print(i) for i in expr.indices),
                                  latex=self.latex, inline=self.inline_partials)

    def _print_Idx(self, expr: sp.Idx) -> str:
        return str(expr.label)

    def _relu_gate(self, arg: sp.Expr) -> str | None:
        """relu′(z⁽¹⁾₁) for a relu unit's step, where the notation writes relu′ so."""
        m = _PRE.fullmatch(arg.name) if isinstance(arg, sp.Symbol) else None
        if m and self.display.functions[int(m[1]) - 1] == "relu" and self.display.notation.relu_prime == "prime":
            return self.display.derivative(int(m[1]), self._print(arg), self.latex)
        return None

    def _derivative_text(self, expr: sp.Derivative) -> str:
        inner, (var, count) = expr.expr, expr.variable_count[0]
        if isinstance(inner, AppliedUndef) and _ACTIVATION.fullmatch(inner.func.__name__) and count == 1:
            l = int(_ACTIVATION.fullmatch(inner.func.__name__)[1])
            return self.display.derivative(l, self._print(inner.args[0]), self.latex)
        of, wrt = self._print(inner), self._print(var)
        return self.display.partial(of, wrt, self.latex, self.inline_partials)

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        return self._derivative_text(expr)

    def _print_KroneckerDelta(self, expr, exp=None) -> str:
        # an index before a fixed value (a class label): 1[j = c], not SymPy's 1[c = j]
        args = sorted(expr.args, key=lambda a: not isinstance(a, sp.Idx))
        i, j = (self._print(a) for a in args)
        if self.display.notation.backward == "delta":  # δ already names the errors: 1[i = j], as for a label
            return rf"\mathbf{{1}}[{i} = {j}]" if self.latex else f"1[{i} = {j}]"
        return rf"\delta_{{{i}{j}}}" if self.latex else self.display.subscript("δ", (i, j))

    def _sum_limits(self, expr: sp.Sum) -> str:
        parts = []
        for index, low, high in expr.limits:
            name = _index_text(index)
            if high.is_Integer:
                parts.append((name, self._print(low), self._print(high)))
            else:
                parts.append((name, None, None))
        return parts


class TextPrinter(_Notation, StrPrinter):
    """One-line Unicode: W⁽²⁾₁₁·(ŷ₁ − y₁)·relu′(z⁽¹⁾₁), (W⁽²⁾ᵀ δ⁽²⁾) ⊙ relu′(z⁽¹⁾)."""

    def __init__(self, display: Display) -> None:
        super().__init__({"order": "none"})
        self.display = display
        self.latex = False

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        name = self.display.component(expr.name)
        return self.display.block(name) if name == expr.name else name  # a whole array: z1, yhat

    def _print_Heaviside(self, expr: sp.Heaviside) -> str:
        gate = self._relu_gate(expr.args[0])
        if gate is not None:
            return gate
        if self.display.notation.relu_prime == "sign":
            return f"max(0, sign({self._print(expr.args[0])}))"
        return f"1[{self._print(step_condition(expr.args[0]))}]"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        """As a board writes cases on one line: {1 if z > 0; 1/100 otherwise}."""
        pieces = [f"{self._print(piece.expr)} if {self._print(piece.cond)}" for piece in expr.args]
        if expr.args[-1].cond == sp.true:
            pieces[-1] = f"{self._print(expr.args[-1].expr)} otherwise"
        return "{" + "; ".join(pieces) + "}"

    def _print_Relational(self, expr: sp.core.relational.Relational) -> str:
        op = {">=": "≥", "<=": "≤"}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _print_Mul(self, expr: sp.Mul) -> str:
        return super()._print_Mul(received_first(expr)).replace("*", "·")

    def _print_Add(self, expr: sp.Add, order=None) -> str:
        elided = self._elided_sum(expr)
        return (elided if elided is not None else super()._print_Add(expr, order)).replace(" - ", " − ")

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp.is_Integer and exp > 1:
            return self.parenthesize(base, precedence(expr), strict=False) + str(exp).translate(_SUPERSCRIPT)
        return super()._print_Pow(expr, rational).replace("**", "^")

    def _print_exp(self, expr: sp.exp) -> str:
        arg = expr.args[0]
        if arg.is_Integer:  # e², as handouts write it
            return "e" + str(arg).translate(_SUPERSCRIPT)
        return f"exp({self._print(arg)})"

    def _print_Exp1(self, expr) -> str:
        return "e"

    def _wrap(self, expr: sp.Basic) -> str:
        text = self._print(expr)
        return f"({text})" if _is_compound(expr) else text

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        if isinstance(expr.arg, sp.MatrixSymbol) and self.display.row_named(expr.arg.name):
            return self.display.block(expr.arg.name, transposed=True)
        text = self._wrap(expr.arg)
        return (f"({text})" if "/" in text or " " in text else text) + "ᵀ"

    def _print_Max(self, expr: sp.Max) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr: sp.Min) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr: sp.Abs) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_MatMul(self, expr: sp.MatMul) -> str:
        parts = []
        for a in expr.args:
            if getattr(a, "is_Matrix", False):
                text = self._print(a)
                wrap = isinstance(a, sp.MatAdd | sp.HadamardProduct | sp.KroneckerProduct) or (
                    isinstance(a, sp.MatrixSymbol) and text.startswith("∇") and len(expr.args) > 1)
                parts.append(f"({text})" if wrap else text)
            else:
                parts.append(self.parenthesize(a, precedence(sp.Mul(2, 3, evaluate=False))))
        return " ".join(parts)

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        out = [("−" if negative else "+", self._print(term)) for negative, term in signed_terms(expr)]
        first_sign, first = out[0]
        head = f"−{first}" if first_sign == "−" else first
        return " ".join([head] + [f"{sign} {text}" for sign, text in out[1:]])

    def _print_HadamardProduct(self, expr: sp.HadamardProduct) -> str:
        return " ⊙ ".join(self._wrap(a) for a in expr.args)

    def _print_KroneckerProduct(self, expr: sp.KroneckerProduct) -> str:
        # The identity's size is the one thing I ⊗ aᵀ does not say by itself.
        return " ⊗ ".join(f"I{self.display.subscript('', (str(self.display.side(a.shape[0])),))}"
                          if isinstance(a, sp.Identity)
                          else self._wrap(a) for a in expr.args)

    def _print_DiagMatrix(self, expr) -> str:
        return f"diag({self._print(expr.args[0])})"

    def _print_Identity(self, expr: sp.Identity) -> str:
        return "I"

    def _print_Sum(self, expr: sp.Sum) -> str:
        limits = "".join(self.display.subscript("", (name,)) if low is None else f"_({name}={low}..{high})"
                         for name, low, high in self._sum_limits(expr))
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = f"({body})"
        return f"Σ{limits} {body}"


class NotationLatexPrinter(_Notation, LatexPrinter):
    """SymPy's LaTeX, with the notation's names for components and blocks."""

    def __init__(self, display: Display) -> None:
        super().__init__({"mul_symbol": None, "order": "none"})
        self.display = display
        self.latex = True

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return self.display.component(expr.name, latex=True, inline=self.inline_partials)

    def _print_Mul(self, expr: sp.Mul) -> str:
        return super()._print_Mul(received_first(expr))

    def _print_Add(self, expr: sp.Add, order=None) -> str:
        elided = self._elided_sum(expr)
        return elided if elided is not None else super()._print_Add(expr, order)

    def _print_Heaviside(self, expr: sp.Heaviside, exp=None) -> str:
        gate = self._relu_gate(expr.args[0])
        if gate is not None:
            text = gate
        elif self.display.notation.relu_prime == "sign":
            text = rf"\max(0, \operatorname{{sign}}({self._print(expr.args[0])}))"
        else:
            text = rf"\mathbf{{1}}[{self._print(step_condition(expr.args[0]))}]"
        return rf"\left({text}\right)^{{{exp}}}" if exp else text

    def _print_MatMul(self, expr: sp.MatMul) -> str:
        # A block written ∇_a L is wrapped when it is a factor: (∇_a L) hᵀ, not ∇_a L hᵀ.
        text = super()._print_MatMul(expr)
        for a in expr.args:
            if isinstance(a, sp.MatrixSymbol):
                name = self._print(a)
                if name.startswith(r"\nabla") and len(expr.args) > 1:
                    text = text.replace(name, rf"\left({name}\right)", 1)
        return text

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        if isinstance(expr.arg, sp.MatrixSymbol) and self.display.row_named(expr.arg.name):
            return self.display.block(expr.arg.name, latex=True, transposed=True)
        inner = self._print(expr.arg)
        if _is_compound(expr.arg) or r"\frac" in inner or " " in inner:
            return rf"\left({inner}\right)^{{\top}}"
        return f"{{{inner}}}^{{\\top}}"  # braces: the block may carry a superscript already

    def _print_HadamardProduct(self, expr) -> str:
        return r" \odot ".join(rf"\left({self._print(a)}\right)" if _is_compound(a) else self._print(a)
                               for a in expr.args)

    def _print_KroneckerProduct(self, expr) -> str:
        return r" \otimes ".join(rf"\mathbf{{I}}_{{{self.display.side(a.shape[0])}}}" if isinstance(a, sp.Identity) else
                                 rf"\left({self._print(a)}\right)" if _is_compound(a) else self._print(a)
                                 for a in expr.args)

    def _print_DiagMatrix(self, expr) -> str:
        return rf"\operatorname{{diag}}\left({self._print(expr.args[0])}\right)"

    def _print_Identity(self, expr) -> str:
        return r"\mathbf{I}"

    def _print_Sum(self, expr: sp.Sum) -> str:
        limits = "".join(rf"\sum_{{{name}}}" if low is None else rf"\sum_{{{name}={low}}}^{{{high}}}"
                         for name, low, high in self._sum_limits(expr))
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = rf"\left({body}\right)"
        return f"{limits} {body}"
