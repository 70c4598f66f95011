"""Checking identities between matrices of expressions, and evaluating block expressions.

A rewrite is shown as done only when `equal` says so. It tries the cheap proofs first: the two
entries are often the same expression tree (SymPy cancels them on subtraction); otherwise it expands;
rational entries (a loss derivative against an activation's) are brought over one denominator.
Never `simplify`: it is slow and its result depends on heuristics.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.matrices.expressions import DiagMatrix, HadamardProduct, KroneckerProduct
from sympy.matrices.expressions.kronecker import matrix_kronecker_product


def entry_is_zero(expr: sp.Expr) -> bool:
    if expr == 0:
        return True
    expanded = sp.expand(expr)
    if expanded == 0:
        return True
    if expanded.has(sp.Pow) and any(p.exp.is_negative for p in expanded.atoms(sp.Pow)):
        return sp.cancel(sp.together(expanded)) == 0
    return False


def equal(a: sp.MatrixBase, b: sp.MatrixBase, substitution: Mapping[sp.Symbol, sp.Expr] | None = None) -> bool:
    """a == b entry by entry, after an optional substitution (e.g. Σ y = 1)."""
    if a.shape != b.shape:
        return False
    subs = dict(substitution or {})
    for x, y in zip(a, b):
        diff = x - y
        if subs:
            diff = diff.xreplace(subs)
        if not entry_is_zero(diff):
            return False
    return True


def evaluate(expr: sp.Basic, env: Mapping[sp.MatrixSymbol, sp.ImmutableMatrix]) -> sp.ImmutableMatrix:
    """The explicit matrix of a block expression, each block replaced by its component matrix."""
    if isinstance(expr, sp.MatrixSymbol):
        return env[expr]
    if isinstance(expr, sp.Identity):
        return sp.ImmutableMatrix(sp.eye(expr.rows))
    if isinstance(expr, sp.ZeroMatrix):
        return sp.ImmutableMatrix(sp.zeros(expr.rows, expr.cols))
    if isinstance(expr, sp.Transpose):
        return evaluate(expr.arg, env).T
    if isinstance(expr, DiagMatrix):
        v = evaluate(expr.args[0], env)
        return sp.ImmutableMatrix(sp.diag(*list(v)))
    if isinstance(expr, HadamardProduct):
        parts = [evaluate(a, env) for a in expr.args]
        out = parts[0]
        for p in parts[1:]:
            out = out.multiply_elementwise(p)
        return sp.ImmutableMatrix(out)
    if isinstance(expr, KroneckerProduct):
        parts = [evaluate(a, env) for a in expr.args]
        return sp.ImmutableMatrix(matrix_kronecker_product(*parts))
    if isinstance(expr, sp.MatMul):
        scalar = sp.Integer(1)
        out = None
        for a in expr.args:
            if not getattr(a, "is_Matrix", False):
                scalar *= a
                continue
            m = evaluate(a, env)
            out = m if out is None else out * m
        assert out is not None
        return sp.ImmutableMatrix(out * scalar if scalar != 1 else out)
    if isinstance(expr, sp.MatAdd):
        parts = [evaluate(a, env) for a in expr.args]
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return sp.ImmutableMatrix(out)
    raise TypeError(f"cannot evaluate {type(expr).__name__}")
