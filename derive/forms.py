"""Readable forms of one entry, each equal to it: what a board would write instead of SymPy's default.

SymPy writes the binary cross-entropy's derivative as (1 − y)/(1 − ŷ) − y/ŷ, and its factored form as
(y − ŷ)/(ŷ(ŷ − 1)); a handout writes (ŷ − y)/(ŷ(1 − ŷ)). `readable` tries a few rewrites (factored,
over one denominator, expanded), orients the signs of the sums in a product, and keeps the shortest
one; `entry_is_zero` confirms that it equals the original before it is used.
"""

from __future__ import annotations

import sympy as sp

from derive.identities import entry_is_zero

MAX_OPS = 400  # beyond this, rewriting costs more than it could gain: the entry is kept as it is


def _oriented(term: sp.Expr, prefer: frozenset[sp.Symbol]) -> tuple[int, sp.Expr]:
    """A sum turned round when its constant is negative (ŷ − 1 reads 1 − ŷ), or, without a constant,
    when its term in a preferred symbol is (y − ŷ reads ŷ − y: prediction minus target)."""
    if not isinstance(term, sp.Add):
        return 1, term
    constant, rest = term.as_coeff_Add()
    if constant != 0:
        leading = constant
    else:
        terms = sp.Add.make_args(rest)
        leading = next((t for t in terms if t.free_symbols & prefer), terms[0]).as_coeff_Mul()[0]
    if leading.is_negative:
        return -1, -term
    return 1, term


def orient_signs(expr: sp.Expr, prefer: frozenset[sp.Symbol] = frozenset()) -> sp.Expr:
    """(y − ŷ)/(ŷ(ŷ − 1)) written (ŷ − y)/(ŷ(1 − ŷ)): the same product, each sum turned round."""
    coeff, factors = sp.Integer(1), []
    for f in sp.Mul.make_args(expr):
        if f.is_Number:
            coeff *= f
        else:
            factors.append(f)
    sign = 1
    out = []
    for f in factors:
        base, exp = f.as_base_exp()
        s, base = _oriented(base, prefer)
        if s == -1 and exp.is_integer:
            sign *= (-1) ** int(exp % 2)
        elif s == -1:
            base = -base  # an odd root of a negated sum: leave it as it was
        out.append(sp.Pow(base, exp, evaluate=False) if exp != 1 else base)
    coeff = coeff * sign
    if coeff == 1:
        return sp.Mul(*out, evaluate=False) if len(out) > 1 else out[0] if out else sp.Integer(1)
    return sp.Mul(coeff, *out, evaluate=False)


def _key(expr: sp.Expr, prefer: frozenset[sp.Symbol]) -> tuple[int, int, int, int]:
    """Fewest operations; then no sum holding a power (ŷ(1 − ŷ), not ŷ − ŷ²); then sums oriented;
    then the shortest text."""
    sums = list(expr.atoms(sp.Add))
    powers = sum(1 for s in sums if any(p.exp.is_Integer and p.exp > 1 for p in s.atoms(sp.Pow)))
    turned = sum(1 for s in sums if _oriented(s, prefer)[0] == -1)
    return sp.count_ops(expr), powers, turned, len(str(expr))


def readable(expr: sp.Expr, prefer: frozenset[sp.Symbol] = frozenset()) -> sp.Expr:
    """The shortest of a few equal spellings of `expr` (itself when none is shorter); sums in a product
    are oriented so that a constant, or else a term in a `prefer` symbol, comes with a plus sign."""
    if not isinstance(expr, sp.Expr) or expr.is_Atom or sp.count_ops(expr) > MAX_OPS:
        return expr
    if not isinstance(expr, sp.Add | sp.Mul):
        return expr
    candidates = [expr]
    collect = sorted(prefer, key=str)
    for rewrite in (sp.factor, lambda e: sp.cancel(sp.together(e)), sp.expand,
                    lambda e: sp.collect(sp.expand(e), collect) if collect else e):
        try:
            candidates.append(rewrite(expr))
        except (sp.PolynomialError, NotImplementedError, TypeError, ValueError):
            continue
    candidates += [orient_signs(c, prefer) for c in list(candidates) if isinstance(c, sp.Mul)]
    best = min(candidates, key=lambda c: _key(c, prefer))
    if best is expr or not entry_is_zero(best - expr):
        return expr
    return best


def readable_matrix(m: sp.MatrixBase, prefer: frozenset[sp.Symbol] = frozenset(),
                    per_entry: tuple[tuple[sp.Symbol, ...], ...] = ()) -> sp.ImmutableMatrix:
    """Each entry readable. Where every entry is one formula of its own unit's symbols (per_entry[k]
    holds entry k's: ŷ_k and y_k), the formula is made readable once and written for each unit."""
    entries = list(m)
    if per_entry and len(per_entry) == len(entries) and len(entries) > 1:
        placeholders = [sp.Dummy() for _ in per_entry[0]]
        template = entries[0].xreplace(dict(zip(per_entry[0], placeholders)))
        if all(e == template.xreplace(dict(zip(placeholders, syms))) for e, syms in zip(entries, per_entry)) \
                and not template.free_symbols & {s for syms in per_entry for s in syms}:
            tidy = readable(template, frozenset(placeholders[:1]) if prefer else frozenset())
            return sp.ImmutableMatrix(m.rows, m.cols,
                                      [tidy.xreplace(dict(zip(placeholders, syms))) for syms in per_entry])
    return sp.ImmutableMatrix(m.rows, m.cols, lambda i, j: readable(m[i, j], prefer))
