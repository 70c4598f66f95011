"""Derivation + verification time and peak memory against width and depth, beside SymPy's naive route.

Run by hand: python3 tests/bench/derive_scaling.py [--quick]. Both routes run in this process, one
after the other for each network. The naive route composes the whole scalar loss and differentiates
it once per weight (what one does without structure); it gets a time budget and reports "> budget".
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sympy as sp

from derive.derivation import derive
from derive.network import build_network
from derive.spec import spec_from_flags


def network(width: int, hidden: int):
    layers = ",".join([f"{width}:relu"] * hidden + [f"{width}:identity"])
    return spec_from_flags(width, layers, loss="half_sse")


def structured(spec) -> tuple[float, float, bool]:
    gc.collect()
    start = time.perf_counter()
    d = derive(spec)
    seconds = time.perf_counter() - start
    gc.collect()
    tracemalloc.start()
    derive(spec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, d.verified


class Budget(Exception):
    pass


def naive(spec, budget: float) -> float | None:
    """Compose L(x, W, b, y) fully and differentiate it per weight; None past the budget."""
    def stop(*_):
        raise Budget

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, budget)
    start = time.perf_counter()
    try:
        net = build_network(spec)
        loss = net.loss_expr
        for layer in reversed(net.layers):
            loss = loss.xreplace(dict(zip(layer.h, layer.h_exprs))).xreplace(dict(zip(layer.z, layer.z_exprs)))
        loss = sp.expand(loss)
        for layer in net.layers:
            for w in layer.W:
                sp.diff(loss, w)
        return time.perf_counter() - start
    except Budget:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="widths up to 8 only")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds allowed to the naive route")
    args = parser.parse_args()
    widths = [2, 4, 8] if args.quick else [2, 4, 8, 16, 32]
    print(f"{'width':>5} {'hidden':>6} {'structured s':>13} {'peak MiB':>9} {'verified':>8} "
          f"{'naive s':>9} {'naive/structured':>17}")
    for hidden in (1, 2, 3, 4):
        for width in widths:
            seconds, peak, ok = structured(network(width, hidden))
            # The naive route only where it can finish: small widths, and the 2-layer width-16 net.
            run_naive = width <= 8 or (width == 16 and hidden == 1)
            slow = naive(network(width, hidden), args.budget) if run_naive else None
            naive_text = f"{slow:9.2f}" if slow is not None else f"> {args.budget:.0f}".rjust(9)
            ratio = f"{slow / seconds:17.1f}" if slow is not None else f"> {args.budget / seconds:.1f}".rjust(17)
            if not run_naive:
                naive_text, ratio = "not run".rjust(9), "".rjust(17)
            print(f"{width:>5} {hidden:>6} {seconds:>13.2f} {peak:>9.1f} {ok!s:>8} {naive_text} {ratio}", flush=True)


if __name__ == "__main__":
    main()
