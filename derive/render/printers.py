"""Thin subclasses of SymPy's printers that write symbols in a course's notation.

Only names change: SymPy decides the layout of every expression. Templates use these as filters.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from derive.naming import Display

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _is_compound(expr: sp.Basic) -> bool:
    return isinstance(expr, sp.MatAdd | sp.MatMul | sp.HadamardProduct | sp.KroneckerProduct)


def _index_text(index: sp.Basic) -> str:
    """A summation index SymPy invented is written k; i and j stay as they are."""
    return "k" if isinstance(index, sp.Dummy) else str(index)


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


class _Entries:
    """Entry (i, j) of a block, as the general entry of an elided matrix is written."""

    display: Display
    latex: bool

    def _print_MatrixElement(self, expr) -> str:
        parent, i, j = expr.args
        rows, cols = parent.shape
        indices = tuple(_index_text(x) for x, n in ((i, rows), (j, cols)) if n != 1)
        return self.display.entry(parent.name, indices, latex=self.latex)


class TextPrinter(_Entries, StrPrinter):
    """One-line Unicode: W⁽²⁾₁₁·(ŷ₁ − y₁)·relu′(z⁽¹⁾₁), (W⁽²⁾ᵀ δ⁽²⁾) ⊙ relu′(z⁽¹⁾)."""

    def __init__(self, display: Display) -> None:
        super().__init__({"order": "none"})
        self.display = display
        self.latex = False

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        name = self.display.component(expr.name)
        return self.display.block(name) if name == expr.name else name  # a whole array: z1, yhat

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return self.display.block(expr.name)

    def _print_Heaviside(self, expr: sp.Heaviside) -> str:
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
        return super()._print_Mul(expr).replace("*", "·")

    def _print_Add(self, expr: sp.Add, order=None) -> str:
        return super()._print_Add(expr, order).replace(" - ", " − ")

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
                parts.append(f"({self._print(a)})" if isinstance(a, sp.MatAdd | sp.HadamardProduct |
                                                                 sp.KroneckerProduct) else self._print(a))
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
        return " ⊗ ".join(self._wrap(a) for a in expr.args)

    def _print_DiagMatrix(self, expr) -> str:
        return f"diag({self._print(expr.args[0])})"

    def _print_Identity(self, expr: sp.Identity) -> str:
        return "I"

    def _print_Sum(self, expr: sp.Sum) -> str:
        (index, *_), = expr.limits
        body = self.parenthesize(expr.function, precedence(sp.Mul(2, 3, evaluate=False)))
        return f"Σ_{_index_text(index)} {body}"


class NotationLatexPrinter(_Entries, LatexPrinter):
    """SymPy's LaTeX, with the notation's names for components and blocks."""

    def __init__(self, display: Display) -> None:
        super().__init__({"mul_symbol": None, "order": "none"})
        self.display = display
        self.latex = True

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return self.display.component(expr.name, latex=True)

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return self.display.block(expr.name, latex=True)

    def _print_Heaviside(self, expr: sp.Heaviside, exp=None) -> str:
        if self.display.notation.relu_prime == "sign":
            text = rf"\max(0, \operatorname{{sign}}({self._print(expr.args[0])}))"
        else:
            text = rf"\mathbf{{1}}[{self._print(step_condition(expr.args[0]))}]"
        return rf"\left({text}\right)^{{{exp}}}" if exp else text

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        inner = self._print(expr.arg)
        if _is_compound(expr.arg) or r"\frac" in inner or " " in inner:
            return rf"\left({inner}\right)^{{\top}}"
        return f"{{{inner}}}^{{\\top}}"  # braces: the block may carry a superscript already

    def _print_HadamardProduct(self, expr) -> str:
        return r" \odot ".join(rf"\left({self._print(a)}\right)" if _is_compound(a) else self._print(a)
                               for a in expr.args)

    def _print_KroneckerProduct(self, expr) -> str:
        return r" \otimes ".join(rf"\left({self._print(a)}\right)" if _is_compound(a) else self._print(a)
                                 for a in expr.args)

    def _print_DiagMatrix(self, expr) -> str:
        return rf"\operatorname{{diag}}\left({self._print(expr.args[0])}\right)"

    def _print_Identity(self, expr) -> str:
        return r"\mathbf{I}"

    def _print_Sum(self, expr: sp.Sum) -> str:
        (index, *_), = expr.limits
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = rf"\left({body}\right)"
        return rf"\sum_{{{_index_text(index)}}} {body}"
