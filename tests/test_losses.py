import sympy as sp

from derive.losses import LOSSES, get_loss

yh = sp.symbols("p1 p2 p3")
y = sp.symbols("t1 t2 t3")


def test_losses_mean_what_the_design_says():
    sse = sum((a - b) ** 2 for a, b in zip(yh, y))
    bce = -sum(b * sp.log(a) + (1 - b) * sp.log(1 - a) for a, b in zip(yh, y))
    expected = {"sse": sse, "half_sse": sse / 2, "mse": sse / 3, "bce": bce, "mean_bce": bce / 3,
                "ce": -sum(b * sp.log(a) for a, b in zip(yh, y))}
    for name, value in expected.items():
        assert sp.expand(LOSSES[name].expression(yh, y) - value) == 0, name


def test_only_cross_entropy_constrains_targets():
    assert [n for n, loss in LOSSES.items() if loss.targets_sum_to_one] == ["ce"]


def test_unknown_loss_lists_valid():
    try:
        get_loss("hinge")
    except Exception as err:
        assert "half_sse" in str(err)
    else:
        raise AssertionError("no error")
