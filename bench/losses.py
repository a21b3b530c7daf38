"""Forward+backward and Hessian-diagonal time of every registry loss, as ratios to cross-entropy.

    python bench/losses.py [--n 65536] [--c 128] [--repeats 3] [--hessian-n 4096]
                           [--losses focal,dice]

Each loss runs on the task it is built for (multiclass where it supports it, else
multilabel with a few positives a row) at N x C logits on this machine's CPU; the Dice
family in both scopes. Ratios are measured in one run, each loss in rounds interleaved with
its baselines, against ``torch.nn.functional.cross_entropy``: the forward+backward ratio against its
forward+backward, and ``losses.derivatives(..., hessian=True)`` (value, gradient and the
exact Hessian diagonal) against both cross-entropy's forward+backward and cross-entropy's
own ``losses.derivatives(..., hessian=True)``. A loss with a closed-form diagonal (or an
element-wise one, one Hessian-vector product) is measured at the full N; the rest take C
batched Hessian-vector products, O(N C^2), and run at ``--hessian-n`` rows (default 4096)
with both baselines re-measured there: at the full N they would take minutes a loss. The
"rows" column says which. A benchmark, not a test: nothing here passes or fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# `losses` package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

import losses
from losses import Coupling, Task

EXTRA_PARAMS: dict[str, dict[str, Any]] = {
    "logit_adjusted_cross_entropy": {"class_prior": "counts"},
    "subset_softmax": {"max_k": 4},
}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def inputs(
    name: str, n: int, c: int, generator: torch.Generator
) -> tuple[Task, torch.Tensor, torch.Tensor, dict[str, Any]]:
    spec = losses.get(name)
    task = Task.MULTICLASS if Task.MULTICLASS in spec.tasks else Task.MULTILABEL
    logits = torch.randn(n, c, generator=generator) * 3
    if task is Task.MULTICLASS:
        targets = torch.randint(0, c, (n,), generator=generator)
    else:
        # up to 4 positives a row, on a long-tailed label frequency
        rank = torch.rand(n, c, generator=generator).argsort(dim=1).argsort(dim=1)
        targets = (rank < torch.randint(0, 5, (n, 1), generator=generator)).float()
    params = dict(EXTRA_PARAMS.get(name, {}))
    if params.get("class_prior") == "counts":
        params["class_prior"] = [float(c - k) for k in range(c)]
    return task, logits, targets, params


def forward_backward(name: str, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> None:
    z = x.detach().requires_grad_(True)
    losses.compute(name, z, y, **params).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=65536)
    parser.add_argument("--c", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hessian-repeats", type=int, default=1)
    parser.add_argument(
        "--hessian-n",
        type=int,
        default=4096,
        help="rows for the Hessian columns (their baselines are re-measured at this N)",
    )
    parser.add_argument("--skip-hessian", action="store_true")
    parser.add_argument(
        "--losses",
        default="",
        help="comma-separated registry names to time (default: every loss)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc's mmap and trim thresholds raised in this process, as the service's "
        "workers run (lossserve.workers.keep_freed_memory); default: glibc's defaults, as a "
        "trainer runs",
    )
    args = parser.parse_args()
    if args.keep_freed_memory:
        from lossserve.workers import keep_freed_memory  # the service's setting

        keep_freed_memory()
    generator = torch.Generator().manual_seed(0)

    x = torch.randn(args.n, args.c, generator=generator) * 3
    y = torch.randint(0, args.c, (args.n,), generator=generator)

    def torch_ce() -> None:
        z = x.detach().requires_grad_(True)
        F.cross_entropy(z, y).backward()

    base = best_time(torch_ce, args.repeats)
    bce_target = (torch.rand(args.n, args.c, generator=generator) < 0.03).float()

    def torch_bce() -> None:
        z = x.detach().requires_grad_(True)
        F.binary_cross_entropy_with_logits(z, bce_target).backward()

    torch_bce_ratio = best_time(torch_bce, args.repeats) / base
    hx, hy = x[: args.hessian_n], y[: args.hessian_n]

    def small_ce() -> None:
        z = hx.detach().requires_grad_(True)
        F.cross_entropy(z, hy).backward()

    base_small = best_time(small_ce, args.repeats)
    base_h = None
    if not args.skip_hessian:
        base_h = best_time(
            partial(losses.derivatives, "cross_entropy", hx, hy, hessian=True),
            args.hessian_repeats,
        )
    print(
        f"N={args.n} C={args.c} threads={torch.get_num_threads()} torch={torch.__version__}; "
        f"F.cross_entropy fwd+bwd {base * 1e3:.1f} ms; for reference torch's own "
        f"F.binary_cross_entropy_with_logits fwd+bwd (element-wise over N*C) is "
        f"{torch_bce_ratio:.2f}x that. glibc malloc: "
        f"{'freed memory kept (the workers setting)' if args.keep_freed_memory else 'defaults'}."
    )
    if base_h is not None:
        print(
            f"Hessian columns at N={args.hessian_n}: F.cross_entropy fwd+bwd "
            f"{base_small * 1e3:.2f} ms, cross_entropy Hessian diagonal (closed form) "
            f"{base_h * 1e3:.2f} ms."
        )
    print(
        "Each loss is timed in rounds interleaved with the baselines (CE forward+backward and "
        "CE's Hessian diagonal at the same rows), and each ratio takes the best of each: a "
        "slow spell of this shared machine, or a change in malloc's state, meets both."
    )
    print()
    print(
        "| loss | task | coupling | fwd+bwd ms | CE fwd+bwd ms (its rounds) "
        "| fwd+bwd / CE fwd+bwd | Hessian rows "
        "| Hessian diag / CE fwd+bwd | Hessian diag / CE Hessian diag |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    chosen = {name.strip() for name in args.losses.split(",") if name.strip()}
    unknown = chosen - set(losses.names())
    if unknown:
        parser.error(f"--losses: no registry loss named {', '.join(sorted(unknown))}")
    ce_hessian = partial(losses.derivatives, "cross_entropy", x, y, hessian=True)
    small_ce_hessian = partial(losses.derivatives, "cross_entropy", hx, hy, hessian=True)
    for name, scope in _variants():
        if chosen and name not in chosen:
            continue
        task, lx, ly, params = inputs(name, args.n, args.c, generator)
        if scope is not None:
            params["scope"] = scope
        spec = losses.get(name)
        coupling = spec.coupling(spec.validate(params), task)
        label = name if scope is None else f"{name} ({scope})"
        ce_fb, fb = interleaved(
            [torch_ce, partial(forward_backward, name, lx, ly, params)], args.repeats
        )
        hess = "- | - | -"
        if not args.skip_hessian:
            full = spec.hessian_diagonal is not None or coupling is Coupling.ELEMENT
            rows = args.n if full else args.hessian_n
            hx_, hy_ = (lx, ly) if full else (lx[:rows], ly[:rows])
            ce_call, ce_h_call = (torch_ce, ce_hessian) if full else (small_ce, small_ce_hessian)
            hessian_call = partial(losses.derivatives, name, hx_, hy_, hessian=True, **params)
            base_fb, base_hess, t = interleaved(
                [ce_call, ce_h_call, hessian_call], args.hessian_repeats
            )
            hess = f"{rows} | {t / base_fb:.1f} | {t / base_hess:.1f}"
        print(
            f"| {label} | {task.value} | {coupling.value} | {fb * 1e3:.1f} | {ce_fb * 1e3:.1f} "
            f"| {fb / ce_fb:.2f} | {hess} |",
            flush=True,
        )


def interleaved(calls: list[Callable[[], object]], repeats: int = 3) -> list[float]:
    """Each call's best time over ``repeats`` rounds, each round calling every one once (after
    one warm-up round)."""
    best = [float("inf")] * len(calls)
    for round_ in range(repeats + 1):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            call()
            if round_:
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def _variants() -> list[tuple[str, str | None]]:
    """Every registry loss; the Dice family once per scope."""
    out: list[tuple[str, str | None]] = []
    for name in losses.names():
        if "scope" in losses.get(name).params.model_fields:
            out += [(name, "batch"), (name, "sample")]
        else:
            out.append((name, None))
    return out


if __name__ == "__main__":
    main()
