"""Readable forms of an entry: shorter, equal, and oriented as a board writes them."""

import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from derive.forms import orient_signs, readable
from derive.identities import entry_is_zero
from derive.render.printers import board_order

a, y, b = sp.symbols("yhat_1 y_1 yhat_2")
PREFER = frozenset({a, b})


def test_binary_cross_entropy_reads_as_a_handout_writes_it():
    assert readable((1 - y) / (1 - a) - y / a, PREFER) == (a - y) / (a * (1 - a))
    assert str(readable((1 - y) / (1 - a) - y / a, PREFER)) == "(-y_1 + yhat_1)/(yhat_1*(1 - yhat_1))"


def test_squared_error_keeps_its_factor():
    assert str(readable(2 * a - 2 * y, PREFER)) == "2*(-y_1 + yhat_1)"


def test_a_sum_is_turned_round_only_when_that_reads_better():
    assert orient_signs((y - a) / (a * (a - 1)), PREFER) == (a - y) / (a * (1 - a))
    assert orient_signs(a * (1 - a), PREFER) == a * (1 - a)


def test_the_board_order_puts_a_positive_term_first():
    assert board_order([-y, a]) == [a, -y]
    xs = sp.symbols("x_2 x_10 x_1")
    assert board_order(list(xs)) == [xs[2], xs[0], xs[1]]


@given(st.lists(st.sampled_from([a, y, b, 1, 2, -1, a * b, a ** 2, 1 / (1 - a), y / a]), min_size=1, max_size=5))
def test_readable_is_always_equal_and_never_longer(terms):
    e = sp.Add(*terms)
    r = readable(e, PREFER)
    assert entry_is_zero(r - e)
    assert sp.count_ops(r) <= sp.count_ops(e)
