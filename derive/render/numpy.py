"""The NumPy module: the gradient program printed as vectorized array code through a Jinja2 template.

Two thin printers. `ArrayPrinter` (SymPy's NumPyPrinter) prints a scalar formula whose placeholders
stand for whole arrays. `BatchPrinter` prints a block expression of the derivation for a batch held
as rows: a column vector v becomes a (B, n) array, W v becomes v @ W.T, an outer product δ aᵀ,
summed over the batch, becomes the one matrix product δ.T @ a, and δ summed over the batch 1ᵀ Δ.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.matrices.expressions import DiagMatrix, HadamardProduct
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from derive import __version__, naming
from derive.derivation import Derivation, derive
from derive.program import (
    LSE,
    Block,
    Elementwise,
    Program,
    ScalarSoftmax,
    Softmax,
    U,
    V,
    build_program,
    build_scalar_program,
    wants_scalar,
)
from derive.render.environment import text_environment
from derive.render.printers import TextPrinter, signed_terms, step_condition
from derive.render.view import CONVENTION_TEXT, display_for
from derive.spec import NetworkSpec


class ArrayPrinter(NumPyPrinter):
    """SymPy's NumPy printer with `np.` and a few stable spellings of common patterns."""

    def __init__(self, names: dict[sp.Symbol, str]) -> None:
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.names = names

    def _module_format(self, fqn: str, register: bool = True) -> str:
        out = super()._module_format(fqn, register)
        return "np." + out.removeprefix("numpy.") if out.startswith("numpy.") else out

    def _print(self, expr, **kwargs) -> str:
        # A constant such as log(2) becomes a Python float: np.log(2) is a float64 scalar and would
        # turn float32 arrays into float64 ones.
        if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Rational and expr.is_real:
            return repr(float(expr))
        return super()._print(expr, **kwargs)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr, expr.name)

    @staticmethod
    def _softplus_arg(base: sp.Expr) -> sp.Expr | None:
        """u when base is 1 + e^u, else None."""
        if isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
            other = base.args[0] if base.args[1] == 1 else base.args[1]
            if isinstance(other, sp.exp):
                return other.args[0]
        return None

    def _softplus_power(self, factor: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
        """(k, u) when factor is (1 + e^u)^(−k), k > 0."""
        if isinstance(factor, sp.Pow) and factor.exp.is_number and factor.exp.is_negative:
            u = self._softplus_arg(factor.base)
            if u is not None:
                return -factor.exp, u
        return None

    def _one_exponential(self, factors: tuple[sp.Expr, ...]) -> str | None:
        """e^a · (1 + e^u)^(−k) · … as the one exponential e^(a − k·log(1 + e^u)), with log(1 + e^u)
        as logaddexp(0, u): each factor alone overflows for large |u| (and inf/inf is nan), the
        product does not. None when no factor is such a power."""
        powers = {f: kp for f in factors if (kp := self._softplus_power(f))}
        if not powers:
            return None
        exps = [f.args[0] for f in factors if isinstance(f, sp.exp)]
        parts = [self._print(sp.Add(*exps))] if exps else []
        for k, u in powers.values():
            term = f"np.logaddexp(0, {self._print(u)})"
            parts.append(f"- {term}" if k == 1 else f"- {self.parenthesize(k, PRECEDENCE['Mul'])}*{term}")
        exponent = " ".join(parts)
        exponential = f"np.exp({'-' + exponent[2:] if not exps else exponent})"
        rest = sp.Mul(*[f for f in factors if f not in powers and not isinstance(f, sp.exp)])
        sign = "-" if rest.could_extract_minus_sign() else ""
        rest = -rest if sign else rest
        if rest == 1:
            return f"{sign}{exponential}"
        return f"{sign}{self.parenthesize(rest, PRECEDENCE['Mul'], strict=True)}*{exponential}"

    def _print_Add(self, expr: sp.Add, order=None) -> str:
        # z + e^(−1) + 1 as z + 1.3678794411714423: constants that are not all rational (SymPy adds
        # those itself) become one float.
        numbers = [a for a in expr.args if a.is_number]
        if len(numbers) < 2:
            return super()._print_Add(expr, order)
        constant = float(sp.Add(*numbers))
        out = self._print(sp.Add(*[a for a in expr.args if not a.is_number]))
        return out if constant == 0 else f"{out} {'-' if constant < 0 else '+'} {abs(constant)!r}"

    def _print_Mul(self, expr: sp.Mul) -> str:
        stable = self._one_exponential(sp.Mul.make_args(expr))
        if stable is not None:
            return stable
        factors = sp.Mul.make_args(expr)
        numbers = [f for f in factors if f.is_number]
        if numbers and not all(f.is_Rational for f in numbers):
            # z·e^(−1) as 0.36787944117144233*z: one float coefficient, in front.
            constant = float(sp.Mul(*numbers))
            rest = sp.Mul(*[f for f in factors if not f.is_number])
            printed = self._print(rest) if precedence(rest) >= PRECEDENCE["Mul"] else f"({self._print(rest)})"
            return f"{'-' if constant < 0 else ''}{abs(constant)!r}*{printed}"
        coeff, rest = expr.as_coeff_Mul()
        factors = sp.Mul.make_args(rest)
        sums = [f for f in factors if isinstance(f, sp.Add)]
        if coeff == -1 and len(sums) == 1 and not self._print(-sums[0]).startswith("-"):
            # −y·(−c + z) as y·(c − z): the minus goes into the sum, two array operations fewer.
            return self._print(sp.Mul(*[f for f in factors if f is not sums[0]], -sums[0], evaluate=False))
        return super()._print_Mul(expr)

    def _print_Heaviside(self, expr: sp.Heaviside) -> str:
        arg, h0 = expr.args
        condition = step_condition(arg)
        if h0 == 0 and isinstance(condition.lhs, sp.Symbol):
            # a comparison is some 20 times faster than np.heaviside; cast, to keep the dtype
            return f"({self._print(condition)}).astype({self._print(condition.lhs)}.dtype)"
        return f"np.heaviside({self._print(arg)}, {self._print(h0)})"

    def _print_Max(self, expr: sp.Max) -> str:
        out = self._print(expr.args[-1])
        for a in reversed(expr.args[:-1]):
            out = f"np.maximum({out}, {self._print(a)})"
        return out

    def _print_Min(self, expr: sp.Min) -> str:
        out = self._print(expr.args[-1])
        for a in reversed(expr.args[:-1]):
            out = f"np.minimum({out}, {self._print(a)})"
        return out

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        """Nested np.where, first condition outermost; every piece ends in (…, True) by then."""
        if expr.args[-1].cond != sp.true:
            return super()._print_Piecewise(expr)
        out = self._print(expr.args[-1].expr)
        for piece in reversed(expr.args[:-1]):
            out = f"np.where({self._print(piece.cond)}, {self._print(piece.expr)}, {out})"
        if all(piece.expr.is_number for piece in expr.args):  # constants alone would make float64
            ref = self._print(sorted(expr.free_symbols, key=str)[0])
            out = f"{out}.astype({ref}.dtype, copy=False)"  # no copy when that is float64 already
        return out

    def _print_Relational(self, expr) -> str:
        if expr.rel_op in (">", ">=", "<", "<="):  # z1 > 0 reads better than np.greater(z1, 0)
            return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"
        return super()._print_Relational(expr)

    def _print_log(self, expr: sp.log) -> str:
        # log(1 + e^u) overflows for large u; logaddexp(0, u) does not.
        u = self._softplus_arg(expr.args[0])
        if u is not None:
            return f"np.logaddexp(0, {self._print(u)})"
        return super()._print_log(expr)

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if self._softplus_power(expr):  # 1/(1 + e^(−u)) is σ(u): e^(−log(1 + e^(−u))) never overflows
            return self._one_exponential((expr,))
        if exp == -1:
            return f"1/{self.parenthesize(base, 1000)}"
        if exp == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exp.is_Integer and exp > 1:
            return f"{self.parenthesize(base, PRECEDENCE['Pow'])}**{exp}"
        return super()._print_Pow(expr, rational)


class ScalarPrinter(ArrayPrinter):
    """Python floats, one component at a time: builtins where NumPy's ufunc call would cost more."""

    def _print_Heaviside(self, expr: sp.Heaviside) -> str:
        arg, h0 = expr.args
        at_zero = f"{float(h0)!r}" if h0.is_number else self._print(h0)
        inner = "0.0" if at_zero == "0.0" else f"({at_zero} if {self._print(arg)} == 0 else 0.0)"
        return f"(1.0 if {self._print(step_condition(arg))} else {inner})"

    def _print_Max(self, expr: sp.Max) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr: sp.Min) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        out = self._print(expr.args[-1].expr)
        for piece in reversed(expr.args[:-1]):
            out = f"({self._print(piece.expr)} if {self._print(piece.cond)} else {out})"
        return out

    def _print_Relational(self, expr) -> str:
        if expr.rel_op in (">", ">=", "<", "<="):  # plain comparisons of floats
            return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"
        return super()._print_Relational(expr)


def _rows(names: list[str], width: int, sep: str = ", ") -> list[str]:
    """`names` joined by `sep` in rows of at most `width` characters. A comma also ends each row (a
    trailing comma, as in a tuple); another separator is left for the caller to begin rows with."""
    rows, current = [], []
    for name in names:
        if current and len(sep.join([*current, name, ""])) > width:
            rows.append(current)
            current = []
        current.append(name)
    rows.append(current)
    if sep.strip() == ",":
        return [(sep.join(row) + sep).rstrip() for row in rows]
    return [sep.join(row) for row in rows]


def wrapped_names(names: list[str], indent: int = 4, width: int = 80) -> str:
    """`a, b, c` as an assignment target, in parentheses over several lines when long."""
    if len(names) == 1:
        return f"({names[0]},)"
    line = ", ".join(names)
    if len(line) + indent <= width:
        return line
    pad = " " * (indent + 4)
    return "(\n" + "\n".join(pad + r for r in _rows(names, width - indent - 4)) + "\n" + " " * indent + ")"


def wrapped_statement(target: str, code: str, indent: int = 4, width: int = 110) -> str:
    """`target = code`, inside parentheses and broken into rows when the line is long: before a
    top-level + or −, and where that is not enough, also before a nested one and after a comma."""
    line = f"{target} = {code}"
    if len(line) + indent <= width:
        return line
    pad = " " * (indent + 4)
    for anywhere in (False, True):
        rows = _fill(_pieces(code, anywhere), width - len(pad))
        if all(len(row) <= width - len(pad) for row in rows):
            break
    if len(rows) == 1:  # nothing to break at
        return line
    return f"{target} = (\n" + "\n".join(pad + row for row in rows) + "\n" + " " * indent + ")"


def _pieces(code: str, anywhere: bool) -> list[str]:
    """`code` cut at the spaces where a row may break: before a binary + or − (at the top level only,
    unless `anywhere`), and after a comma when `anywhere`. Joined by spaces, they give `code` back."""
    pieces, depth, start = [], 0, 0
    for k, ch in enumerate(code):
        depth += (ch in "([") - (ch in ")]")
        before_operator = code[k:k + 3] in (" + ", " - ") and (depth == 0 or anywhere)
        if ch == " " and k > start and (before_operator or (anywhere and code[k - 1] == ",")):
            pieces.append(code[start:k])
            start = k + 1
    return [*pieces, code[start:]]


def _fill(pieces: list[str], width: int) -> list[str]:
    """As many pieces to a row as fit in `width`."""
    rows = [pieces[0]]
    for piece in pieces[1:]:
        if len(rows[-1]) + 1 + len(piece) <= width:
            rows[-1] += " " + piece
        else:
            rows.append(piece)
    return rows


def comment_rows(text: str, indent: int = 4, width: int = 100) -> list[str]:
    """The rows of a `# text` comment that fits `width`; a row that continues one is indented by two."""
    return textwrap.wrap(text, width - indent - 2, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False) or [""]


def wrapped_items(names: list[str], indent: int = 8, width: int = 100) -> str:
    """The items of a list literal, one row per line."""
    return ("\n" + " " * indent).join(_rows(names, width - indent))


def wrapped_chain(operands: list[str], op: str, indent: int = 12, width: int = 100) -> str:
    """`a op b op c` inside parentheses, broken before `op` when long."""
    rows = _rows(operands, width - indent - len(op) - 2, f" {op} ")
    return ("\n" + " " * indent + f"{op} ").join(rows)


def docstring_text(text: str, width: int = 100) -> str:
    """Text from the spec, wrapped, as it may stand in a triple-quoted string: a backslash or a quote
    would end the string or start an escape."""
    lines = textwrap.wrap(text, width, break_on_hyphens=False) or [""]
    return "\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)


def scalar_view(d: Derivation) -> dict | None:
    if not wants_scalar(d):
        return None
    sp_ = build_scalar_program(d)
    printer = ScalarPrinter({})
    forward = []
    for item in sp_.forward:
        if isinstance(item, ScalarSoftmax):
            exps = [f"e_{i}" for i in range(1, len(item.outputs) + 1)]
            forward.append({"softmax": True, "outputs": [s.name for s in item.outputs], "exps": exps,
                            "inputs": [s.name for s in item.inputs], "lse": item.lse.name})
        else:
            forward.append({"softmax": False, "code": wrapped_statement(item[0].name, printer.doprint(item[1]))})
    flat, offset, grads = [], 0, []
    for name, entries in sp_.grads:
        flat += [s.name for s in entries]
        grads.append({"name": name, "start": offset, "stop": offset + len(entries)})
        offset += len(entries)
    return {
        "x": wrapped_names([s.name for s in sp_.x]),
        "y": [s.name for s in sp_.y],
        "y_names": wrapped_names([s.name for s in sp_.y]),
        "params": [{"name": name, "names": wrapped_names([s.name for s in entries])} for name, entries in sp_.params],
        "forward": forward,
        "loss": wrapped_statement("value", printer.doprint(sp_.loss)),
        "backward": [wrapped_statement(target.name, printer.doprint(e)) for target, e in sp_.backward],
        "flat": wrapped_items(flat),
        "grads": grads,
    }


@dataclass(frozen=True)
class Code:
    text: str
    kind: str               # ex: per-example (B, n) | sc: per-example scalar (B, 1) | W: parameter matrix
    shape: tuple[int, int]  # | p: parameter vector | num | diag | I | sum: summed over the batch
    operands: tuple[str, str] | None = None  # a matmul's: its result is a new array, safe to update in place

    def wrapped(self) -> str:
        """The text, in parentheses unless it is already one operand (a name, a call, a bracketed whole)."""
        depth = 0
        for c in self.text:
            depth += (c in "([") - (c in ")]")
            if depth == 0 and c in " -":
                return f"({self.text})"
        return self.text


# For 2-D arrays np.dot(a, b) is the same product as a @ b. It skips the ufunc machinery, which costs
# @ about a microsecond a call, but its BLAS calls ran 1–3 % slower here on 256² to 1024² operands:
# np.dot pays for weights up to about 100 × 100 entries, @ beyond.
DOT_LIMIT = 10_000


class BatchPrinter:
    """Block expressions as code over a batch of rows; see the module docstring."""

    def __init__(self, params: set[str], scalar: ArrayPrinter, dot: frozenset[str] = frozenset()) -> None:
        self.params = params
        self.scalar = scalar
        self.dot = dot  # the weights whose products are written np.dot(a, b)

    def product(self, a: Code | str, b: Code | str, weight: str) -> str:
        """a · b, a product with the weight `weight` (or its gradient); a string is already one operand."""
        if weight in self.dot:
            return "np.dot({}, {})".format(*(o.text if isinstance(o, Code) else o for o in (a, b)))
        return "{} @ {}".format(*(o.wrapped() if isinstance(o, Code) else o for o in (a, b)))

    def doprint(self, expr: sp.Basic) -> str:
        return self.code(expr).text

    def code(self, e: sp.Basic) -> Code:
        shape = tuple(int(n) for n in e.shape) if hasattr(e, "shape") else (1, 1)
        if isinstance(e, sp.MatrixSymbol):
            if e.name in self.params:
                return Code(e.name, "W" if e.name.startswith("W") else "p", shape)
            return Code(e.name, "ex", shape)
        if isinstance(e, sp.Identity):
            return Code("", "I", shape)
        if isinstance(e, DiagMatrix):
            inner = self.code(e.args[0])
            return Code(inner.text, "diag", shape)
        if isinstance(e, sp.Transpose):
            inner = self.code(e.arg)
            if inner.kind == "W":
                text = inner.text.removesuffix(".T") if inner.text.endswith(".T") else f"{inner.text}.T"
                return Code(text, "W", shape)
            if inner.kind == "sum":
                return Code(f"{inner.wrapped()}.T", "sum", shape)
            return Code(inner.text, inner.kind, shape)
        if isinstance(e, HadamardProduct):
            parts = [self.code(a) for a in e.args]
            return Code(" * ".join(p.wrapped() for p in parts), "ex", shape)
        if isinstance(e, sp.MatAdd):
            out = ""
            for i, (negative, term) in enumerate(signed_terms(e)):
                c = self.code(term)
                text = c.wrapped() if negative else c.text
                out += (" - " if i else "-") + text if negative else (" + " if i else "") + text
            return Code(out, "ex", shape)
        if isinstance(e, sp.MatMul):
            parts = [self.code(a) if getattr(a, "is_Matrix", False) else Code(self.scalar.doprint(a), "num", (1, 1))
                     for a in e.args]
            # SymPy flattens p (pᵀ g) into p pᵀ g: the grouping that avoids a per-example outer product
            # is left to right for rows and right to left for columns; try one, then the other.
            try:
                acc = self._fold(parts)
            except TypeError:
                acc = self._fold(parts[::-1], reverse=True)
            return dataclasses.replace(acc, shape=shape)
        raise TypeError(f"no batched code for {type(e).__name__}")

    def _fold(self, parts: list[Code], reverse: bool = False) -> Code:
        acc = parts[0]
        for c in parts[1:]:
            acc = self.combine(c, acc) if reverse else self.combine(acc, c)
        return acc

    def combine(self, left: Code, right: Code) -> Code:
        """left · right for one example, written for the whole batch."""
        (r, _), (_, c) = left.shape, right.shape
        if right.kind == "I":
            return left
        if left.kind == "I":
            return right
        if left.kind == "num":
            return Code(f"{left.wrapped()} * {right.wrapped()}", right.kind, right.shape)
        if right.kind == "num":
            return Code(f"{left.wrapped()} * {right.wrapped()}", left.kind, left.shape)
        if left.kind == "ex" and right.kind == "W" and r == 1:          # row · W
            text = self.product(left, right.text, right.text.removesuffix(".T"))
            return Code(text, "ex", (1, c), (left.text, right.text))
        if left.kind == "W" and right.kind == "ex" and c == 1:          # W · column = (columnᵀ Wᵀ)ᵀ
            w = left.text.removesuffix(".T") if left.text.endswith(".T") else f"{left.text}.T"
            return Code(self.product(right, w, left.text.removesuffix(".T")), "ex", (r, 1), (right.text, w))
        if left.kind == "ex" and right.kind == "ex" and r == 1 and c == 1:  # row · column: a scalar each
            return Code(f"np.sum({left.wrapped()} * {right.wrapped()}, axis=-1, keepdims=True)", "sc", (1, 1))
        if "sc" in (left.kind, right.kind) or "diag" in (left.kind, right.kind):
            return Code(f"{left.wrapped()} * {right.wrapped()}", "ex", (r, c))
        raise TypeError(f"no batched product for {left.kind} · {right.kind}")


def statement_code(s, batch: BatchPrinter, keep_lse: bool = True) -> list[str]:
    """The lines of code for one statement; a softmax's log Σ exp is named only when `keep_lse`."""
    if isinstance(s, Block) and s.kind == "weight":
        # δ aᵀ (or aᵀ δ) for each example, summed over the batch: one matmul, Δᵀ A (or Aᵀ Δ).
        first, second = (batch.code(a) for a in s.expr.args)
        weight = next(name for name in batch.params if naming.gradient(name) == s.target)
        return [f"{s.target} = {batch.product(f'{first.wrapped()}.T', second, weight)}"]
    if isinstance(s, Block) and s.kind == "bias":
        # δ for each example, summed over the batch: 1ᵀ Δ, one matrix-vector product, which BLAS does
        # in about half the time of Δ.sum(axis=0) (a bias is a weight on an input that is always 1).
        return [f"{s.target} = np.dot({naming.BATCH_ONES}, {batch.code(s.expr).text})"]
    if isinstance(s, Block):
        return in_place(s.target, s.expr, batch, s.reuse) or [wrapped_statement(s.target, batch.doprint(s.expr))]
    if isinstance(s, Elementwise):
        if isinstance(s.expr, sp.Heaviside) and s.expr.args[1] == 0 and s.expr.args[0] in dict(s.args):
            # 1[z > 0] as a boolean mask: it only ever multiplies, and a mask needs no float copy.
            return [f"{s.target} = {dict(s.args)[s.expr.args[0]]} > 0"]
        if s.from_derivative:  # z ⊙ σ′ spelled as one ufunc call, so that it can write into z's memory
            code = f"np.multiply({dict(s.args)[U]}, {dict(s.args)[V]})"
        else:
            code = ArrayPrinter(dict(s.args)).doprint(s.expr)
        if not s.reuse:
            return [wrapped_statement(s.target, code)]
        into = with_out(code, s.reuse)
        if into:
            return with_note(s.target, into, f"into {s.reuse}'s memory: {s.reuse} is not read again")
        # Not one ufunc call, so no out=: the argument's memory is handed back instead.
        return [wrapped_statement(s.target, code), f"del {s.reuse}  # not read again"]
    if isinstance(s, Softmax):
        return [f"{s.target}, {'lse' + str(s.layer) if keep_lse else '_'} = _softmax({s.source})"]
    raise TypeError(type(s).__name__)


def with_note(target: str, code: str, note: str, indent: int = 4, width: int = 110) -> list[str]:
    """`target = code  # note`, or the note on a line of its own above when both do not fit."""
    joined = f"{target} = {code}  # {note}"
    return [joined] if indent + len(joined) <= width else [f"# {note}", wrapped_statement(target, code)]


def with_out(code: str, out: str) -> str | None:
    """`np.f(…)` given `out=`, when all of `code` is one call of a NumPy ufunc with one output (the
    arguments are evaluated before anything is written); else None."""
    head, paren, _ = code.partition("(")
    name = head.removeprefix("np.")
    ufunc = getattr(np, name, None) if head.startswith("np.") and name.isidentifier() else None
    if not paren or not isinstance(ufunc, np.ufunc) or ufunc.nout != 1:
        return None
    depth = 0
    for k in range(len(head), len(code)):
        depth += (code[k] == "(") - (code[k] == ")")
        if depth == 0:
            return f"{code[:-1]}, out={out})" if k == len(code) - 1 else None
    return None


def in_place(target: str, expr: sp.MatrixExpr, batch: BatchPrinter, reuse: str | None = None) -> list[str] | None:
    """A sum or Hadamard product with a matmul among its terms, as that matmul updated in place
    (z = x @ W.T; z += b): one array allocated instead of one per operation. None when there is none.
    With `reuse`, the matmul (or a bare matmul) writes into that array, which is not read again: no
    new array at all."""
    if isinstance(expr, sp.MatAdd):
        terms = [("-=" if negative else "+=", batch.code(term)) for negative, term in signed_terms(expr)]
    elif isinstance(expr, HadamardProduct):
        terms = [("*=", batch.code(a)) for a in expr.args]
    else:
        terms = [("", batch.code(expr))]
        if not (reuse and terms[0][1].operands):
            return None
    first = next((i for i, (op, c) in enumerate(terms) if c.operands and op != "-="), None)
    if first is None:
        return None
    head = terms[first][1]
    if reuse:
        a, b = head.operands
        lines = [f"{target} = np.matmul({a}, {b}, out={reuse})  # into {reuse}'s memory: {reuse} is not read again"]
    else:
        lines = [f"{target} = {head.text}"]
    return lines + [f"{target} {op} {c.wrapped()}" for i, (op, c) in enumerate(terms) if i != first]


def statement_comment(s, text: TextPrinter, display) -> str:
    """The equation a line implements, in the spec's notation."""
    if isinstance(s, Block):
        lhs, rhs = s.equation
        tail = ", summed over the batch" if s.kind in ("weight", "bias") else ""
        return f"{text.doprint(lhs)} = {text.doprint(rhs)}{tail}"
    if isinstance(s, Elementwise) and s.from_derivative:
        z, dact = dict(s.args)[U], dict(s.args)[V]
        l = int(z.removeprefix("z"))
        f, df = display.function(l, False), display.derivative(l, "u", False)
        lhs, rhs = display.block(s.target), f"{display.block(z)} ⊙ {display.block(dact)}"
        return f"{lhs} = {rhs}, entry by entry, as {f}(u) = u·{df}"
    if isinstance(s, Elementwise):
        formula = s.expr.xreplace({ph: sp.Symbol(name) for ph, name in s.args})
        lhs, rhs = display.block(s.target), text.doprint(formula)
        return f"{lhs}, entry by entry" if lhs == rhs else f"{lhs} = {rhs}, entry by entry"
    return f"{display.block(s.target)} = {display.function(s.layer, False)}({display.block(s.source)})"


def module_view(d: Derivation, program: Program, spec: NetworkSpec) -> dict:
    """`spec` gives the sizes; `d` may be the derivation of the same network at smaller sizes."""
    net = d.network
    display = display_for(d)
    text = TextPrinter(display)
    params = {}
    widths = spec.widths
    for l, layer in enumerate(spec.layers, start=1):
        params[f"W{l}"] = (widths[l], widths[l - 1]) if spec.convention == "column" else (widths[l - 1], widths[l])
        if layer.bias:
            params[f"b{l}"] = (widths[l],)
    arrays = ArrayPrinter({})
    batch = BatchPrinter(set(params), arrays, frozenset(name for name, shape in params.items()
                                                        if len(shape) == 2 and shape[0] * shape[1] <= DOT_LIMIT))

    def lines(statements, keep_lse=True):
        out = []
        first_bias = next((s for s in statements if isinstance(s, Block) and s.kind == "bias"), None)
        for s in statements:
            code = statement_code(s, batch, keep_lse)
            if s is first_bias:  # the vector of ones its product (and every later bias's) reads
                operand = batch.code(s.expr).text
                assert operand.isidentifier(), operand  # a δ is always one named array
                code = [*with_note(naming.BATCH_ONES, f"np.ones(x.shape[0], dtype={operand}.dtype)",
                                   "a 1 per example: a product with it sums over the batch"), *code]
            if s.target == program.scale_delta and spec.loss.batch == "mean":
                # A new array may be divided in place; a bare name may be another statement's array.
                alias = len(code) == 1 and re.fullmatch(rf"{s.target} = \w+(\.T)?", code[0])
                scale = f"{s.target} = {s.target} / x.shape[0]" if alias else f"{s.target} /= x.shape[0]"
                code.append(f"{scale}  # the mean over the batch, applied once")
            out.append({"comment": comment_rows(statement_comment(s, text, display)), "code": code,
                        "target": s.target})
        return out

    loss = None
    if program.loss is not None:
        lp = ArrayPrinter(dict(program.loss.args) | {LSE: f"lse{net.depth}"})
        pair = program.loss.factors
        total = (f"np.vdot({lp.doprint(pair[0])}, {lp.doprint(pair[1])})" if pair
                 else f"np.sum({lp.doprint(program.loss.term)})")
        loss = {"coeff": arrays.doprint(program.loss.coeff), "term": lp.doprint(program.loss.term), "total": total,
                "from_logits": program.loss.from_logits}
    component_names = {s: f"{name}[:, {i}]" for block, syms in (("yhat", net.yhat), ("y", net.y))
                       for i, s in enumerate(syms) for name in [block]}
    loss_components = ArrayPrinter(component_names).doprint(program.loss_components)
    backward = lines(program.backward)
    loss_used = set(re.findall(r"\b\w+\b", loss["term"] if loss else loss_components))
    softmax_lse = [f"lse{s.layer}" for s in program.forward if isinstance(s, Softmax)]
    values = [*program.outputs, *softmax_lse]
    return {
        "title": docstring_text(spec.title or spec.name),
        "name": spec.name,
        "version": __version__,
        "network": docstring_text("Network: " + " -> ".join(
            [f"x ({spec.input})"] + [f"{layer.units} {layer.activation}" for layer in spec.layers]) + "."),
        "loss_text": net.loss.description,
        "loss_name": net.loss.name,
        "convention": CONVENTION_TEXT[spec.convention],
        "column": spec.convention == "column",
        "batch": spec.loss.batch,
        "index_target": spec.loss.target == "index",
        "targets_sum_to_one": net.loss.targets_sum_to_one and spec.loss.target != "index",
        "input_width": spec.input,
        "output_width": widths[-1],
        "output_names": wrapped_items([f'"{n}"' for n in program.outputs]),
        "params": params,
        "shapes_text": ", ".join(f"{name} {shape}" for name, shape in params.items()),
        "param_names": wrapped_names(list(params)),
        "param_lookups": wrapped_items([f'params["{name}"]' for name in params], indent=12),
        "param_shapes": wrapped_items([f"{name}.shape" for name in params], indent=12),
        "param_types": wrapped_chain([f"type({name})" for name in params] + ["np.ndarray"], "is"),
        "fan_in": {name: (shape[1] if spec.convention == "column" else shape[0]) for name, shape in params.items()
                   if name.startswith("W")},
        "forward": lines(program.forward),
        "outputs": list(program.outputs),
        "output_layer": f"z{net.depth}",
        "loss": loss,
        "loss_components": loss_components,
        "training": lines(program.training, keep_lse=f"lse{net.depth}" in program.loss_reads),
        "backward": backward,
        "loss_inputs": [n for n in values if n in loss_used],
        "values": values,
        "needs_softmax": any(isinstance(s, Softmax) for s in program.forward),
        "grads": [(name, naming.gradient(name)) for name in params],
    }


def render_numpy(d: Derivation, spec: NetworkSpec | None = None) -> str:
    """The module for `spec` (default: the derivation's own), printed from the derivation `d`."""
    program = build_program(d)
    view = module_view(d, program, spec or d.spec)
    view["scalar"] = scalar_view(d) if spec is None or spec == d.spec else None
    return text_environment().get_template("module.py.j2").render(**view)


def smaller(spec: NetworkSpec, cap: int, keep_output: bool = False) -> NetworkSpec:
    """The same network with its widths capped at `cap` (the output width too, unless kept)."""
    last = len(spec.layers) - 1
    layers = tuple(dataclasses.replace(layer, units=layer.units if keep_output and i == last else
                                       min(layer.units, cap)) for i, layer in enumerate(spec.layers))
    return dataclasses.replace(spec, input=min(spec.input, cap), layers=layers, example=None)


def numpy_source(spec: NetworkSpec) -> str:
    """The module for `spec`. Code is printed from block forms, so it rarely depends on the widths:
    when the code printed from derivations at widths capped at 3 and at 4 is the same, it is the code
    for every width, and the full-size derivation (slow for wide layers) is not needed."""
    if max(spec.widths) <= 4:
        return render_numpy(derive(spec))
    for keep_output in (False, True):  # mse's 2/K, say, depends on the output width: then keep it
        if keep_output and max(spec.widths[:-1]) <= 4:
            break
        at3, at4 = (render_numpy(derive(smaller(spec, cap, keep_output)), spec) for cap in (3, 4))
        if at3 == at4:
            return at4
    return render_numpy(derive(spec))
