import sympy as sp
from sympy.matrices.expressions import DiagMatrix, HadamardProduct, KroneckerProduct

from derive.identities import equal, evaluate

a, b, c, d = sp.symbols("a b c d")


def test_equal_expands_and_cancels():
    assert equal(sp.Matrix([(a + b) ** 2]), sp.Matrix([a**2 + 2 * a * b + b**2]))
    assert equal(sp.Matrix([(a - b) / (a * (1 - a)) * a * (1 - a)]), sp.Matrix([a - b]))
    assert not equal(sp.Matrix([a + b]), sp.Matrix([a - b]))
    assert not equal(sp.Matrix([a]), sp.Matrix([a, b]))


def test_equal_under_a_substitution():
    assert equal(sp.Matrix([a + b]), sp.Matrix([1]), {b: 1 - a})
    assert not equal(sp.Matrix([a + b]), sp.Matrix([1]))


def test_evaluate_blocks():
    v = sp.MatrixSymbol("v", 2, 1)
    W = sp.MatrixSymbol("W", 2, 2)
    env = {v: sp.ImmutableMatrix([a, b]), W: sp.ImmutableMatrix([[a, b], [c, d]])}
    assert evaluate(W.T * v, env) == sp.Matrix([[a * a + c * b], [b * a + d * b]])
    assert evaluate(HadamardProduct(v, v), env) == sp.Matrix([a**2, b**2])
    assert evaluate(DiagMatrix(v), env) == sp.diag(a, b)
    assert evaluate(KroneckerProduct(sp.Identity(2), v.T), env) == sp.Matrix([[a, b, 0, 0], [0, 0, a, b]])
    assert evaluate(sp.MatAdd(v, -v), env) == sp.zeros(2, 1)
