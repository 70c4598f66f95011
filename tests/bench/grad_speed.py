"""Gradient speed: the generated module against PyTorch eager, jax.jit (when installed) and a plain
hand-written NumPy backprop, all in this process, interleaved, medians and ratios printed.

Run by hand: python3 tests/bench/grad_speed.py [--rounds N] [--config K ...] [--dtype D ...]. ReLU
hidden layers, softmax cross-entropy on class labels, mean over the batch; float32 and float64.

The machine's speed drifts over minutes and switches between fast and slow phases lasting from
milliseconds to about a second, by up to 1.8× (seen here on a 2-vCPU VM, even pinned to one core).
So each round times every implementation once, in an order rotated from round to round (no one always
follows the 1024³ product or the frameworks' thread pools), and a ratio is the median over rounds of
the two times taken in the same round (paired), beside the ratio of the plain medians. The NumPy matmul
peak (a 1024³ product) is timed in every round too, and "% peak" is given both ways; the best burst
measured up front is printed for reference. Compare the ratios of one run, not absolute times across
runs.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from derive.render.numpy import numpy_source
from derive.spec import spec_from_flags
from derive.verify import load_module

CONFIGS = [(1, [4, 3, 3]), (64, [64, 64, 10]), (256, [784, 256, 256, 10]), (1024, [1024, 1024, 1024, 10])]


def generated(widths):
    layers = ",".join([f"{w}:relu" for w in widths[1:-1]] + [f"{widths[-1]}:softmax"])
    spec = spec_from_flags(widths[0], layers, loss="ce", target="index")
    module = load_module(numpy_source(spec), f"bench_{'_'.join(map(str, widths))}")
    return module.loss_and_grads


def handwritten(params, x, labels):
    """The backprop one writes by hand in NumPy, for comparison."""
    n = len(params) // 2
    acts, pre = [x], []
    for layer in range(1, n):
        z = acts[-1] @ params[f"W{layer}"].T + params[f"b{layer}"]
        pre.append(z)
        acts.append(np.maximum(z, 0))
    logits = acts[-1] @ params[f"W{n}"].T + params[f"b{n}"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    rows = np.arange(x.shape[0])
    loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, labels]))
    delta = e / total
    delta[rows, labels] -= 1
    delta /= x.shape[0]
    grads = {}
    for layer in range(n, 0, -1):
        grads[f"W{layer}"] = delta.T @ acts[layer - 1]
        grads[f"b{layer}"] = delta.sum(axis=0)
        if layer > 1:
            delta = (delta @ params[f"W{layer}"]) * (pre[layer - 2] > 0)
    return loss, grads


def torch_impl(params, dtype):
    import torch
    import torch.nn.functional as F

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    n = len(params) // 2

    def run(x, labels):
        for v in tp.values():
            v.grad = None
        a = x
        for layer in range(1, n):
            a = torch.relu(F.linear(a, tp[f"W{layer}"], tp[f"b{layer}"]))
        loss = F.cross_entropy(F.linear(a, tp[f"W{n}"], tp[f"b{n}"]), labels)
        loss.backward()
        return loss.item(), {k: v.grad for k, v in tp.items()}

    return run


def jax_impl(params):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    # Without x64, jax quietly turns float64 arrays into float32 ones and times the wrong thing.
    jax.config.update("jax_enable_x64", True)
    n = len(params) // 2

    def loss_fn(p, x, labels):
        a = x
        for layer in range(1, n):
            a = jnp.maximum(a @ p[f"W{layer}"].T + p[f"b{layer}"], 0)
        logits = a @ p[f"W{n}"].T + p[f"b{n}"]
        logp = logits - jax.scipy.special.logsumexp(logits, axis=1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    fn = jax.jit(jax.value_and_grad(loss_fn))
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    assert all(jp[k].dtype == v.dtype for k, v in params.items()), "jax changed the dtype"

    def run(x, labels):
        value, grads = fn(jp, x, labels)
        jax.block_until_ready(grads)
        return value, grads

    return run


def per_call(fn, args, target: float = 0.02) -> float:
    """Seconds per call, from a batch of calls lasting about `target` seconds. A pause first lets the
    worker threads of the implementation timed before (torch's OpenMP, XLA's pool) stop spinning, so
    that they do not slow this one."""
    time.sleep(0.02)
    start = time.perf_counter()
    fn(*args)
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(target / once))
    start = time.perf_counter()
    for _ in range(calls):
        fn(*args)
    return (time.perf_counter() - start) / calls


PEAK_N = 1024


def peak_operands(dtype) -> tuple[np.ndarray, np.ndarray]:
    a = np.random.default_rng(0).standard_normal((PEAK_N, PEAK_N)).astype(dtype)
    return a, a.copy()


def matmul_peak(dtype) -> float:
    """GFLOP/s of the best of three bursts of 1024³ products."""
    best = min(per_call(np.matmul, peak_operands(dtype), 0.2) for _ in range(3))
    return 2 * PEAK_N**3 / best / 1e9


def flops(batch: int, widths: list[int]) -> float:
    """Forward and backward matmuls: 2·B·n_in·n_out each; the first layer needs no input gradient."""
    pairs = list(itertools.pairwise(widths))
    return 2 * batch * (3 * sum(a * b for a, b in pairs) - pairs[0][0] * pairs[0][1])


def blas_kernels() -> str:
    """Which kernels NumPy's BLAS chose: OpenBLAS picks them by CPU, and on a CPU it does not know it
    falls back to older ones (Haswell's AVX2 on an AVX-512 Zen 5, where OPENBLAS_CORETYPE=SkylakeX before
    Python starts doubled the 1024³ rate; a Zen 4 got SkylakeX's), which moves every ratio against torch and jax."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "NumPy's BLAS kernels: unknown (pip install threadpoolctl to see them)"
    found = [f"{i['internal_api']} {i['version']}, {i.get('architecture')} kernels, {i['num_threads']} threads"
             for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    return "NumPy's BLAS: " + ("; ".join(found) or "unknown")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--config", type=int, nargs="+", choices=range(len(CONFIGS)), default=range(len(CONFIGS)),
                        help="which configs to run, by position (0 is the smallest)")
    parser.add_argument("--dtype", choices=["float32", "float64"], nargs="+", default=["float32", "float64"])
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads()))
    except ImportError:
        torch = None
    print(blas_kernels())
    for dtype in map(np.dtype, args.dtype):
        burst = matmul_peak(dtype)
        print(f"\n{dtype.name}: NumPy matmul 1024³, best burst {burst:.1f} GFLOP/s; "
              f"% peak is against the 1024³ product timed in the same rounds")
        print(f"{'batch':>5} {'widths':<22} {'impl':<12} {'median µs':>11} {'× gen':>8} {'× gen':>8} "
              f"{'GFLOP/s':>8} {'% peak':>8} {'% peak':>8}")
        print(f"{'':>53} {'paired':>8} {'medians':>8} {'':>8} {'paired':>8} {'medians':>8}")
        for batch, widths in (CONFIGS[k] for k in args.config):
            rng = np.random.default_rng(0)
            params = {}
            for layer, (a, b) in enumerate(itertools.pairwise(widths), start=1):
                params[f"W{layer}"] = (rng.standard_normal((b, a)) / np.sqrt(a)).astype(dtype)
                params[f"b{layer}"] = (0.1 * rng.standard_normal(b)).astype(dtype)
            x = rng.standard_normal((batch, widths[0])).astype(dtype)
            labels = rng.integers(0, widths[-1], batch)
            impls = {"generated": (generated(widths), (params, x, labels)),
                     "hand NumPy": (handwritten, (params, x, labels))}
            if torch is not None:
                impls["torch eager"] = (torch_impl(params, dtype), (torch.tensor(x), torch.tensor(labels)))
            jx = jax_impl(params)
            if jx is not None:
                import jax.numpy as jnp

                impls["jax.jit"] = (jx, (jnp.asarray(x), jnp.asarray(labels)))
            ref = impls["generated"][0](*impls["generated"][1])[1]
            hand = handwritten(params, x, labels)[1]
            assert all(np.allclose(ref[k], hand[k], rtol=1e-3, atol=1e-5) for k in hand), "implementations disagree"
            impls["matmul 1024³"] = (np.matmul, peak_operands(dtype))
            names = list(impls)
            samples: dict[str, list[float]] = {name: [] for name in names}
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    fn, fargs = impls[name]
                    samples[name].append(per_call(fn, fargs))
            gen = samples["generated"]
            peak_rates = [2 * PEAK_N**3 / t / 1e9 for t in samples["matmul 1024³"]]
            for name, times in samples.items():
                work = 2 * PEAK_N**3 if name == "matmul 1024³" else flops(batch, widths)
                t = statistics.median(times)
                paired = statistics.median(a / g for a, g in zip(times, gen))
                share = statistics.median(work / a / 1e9 / p for a, p in zip(times, peak_rates))
                rate = work / t / 1e9
                print(f"{batch:>5} {widths!s:<22} {name:<12} {t * 1e6:>11.1f} {paired:>8.2f} "
                      f"{t / statistics.median(gen):>8.2f} {rate:>8.2f} {100 * share:>7.1f}% "
                      f"{100 * rate / statistics.median(peak_rates):>7.1f}%", flush=True)


if __name__ == "__main__":
    main()
