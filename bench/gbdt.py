"""LightGBM with registry losses as objectives, against LightGBM's own multiclass objective.

    python bench/gbdt.py [--dataset page-blocks] [--rounds 200] [--repeats 3]

Fits ``lightgbm.LGBMClassifier`` on a packaged dataset (train and validation rows together)
with its built-in ``multiclass`` objective and with ``losses.gbdt.lightgbm_objective`` for
focal (gamma 2), Dice and self-adjusting Dice (both ``scope="sample"``: a boosting
objective needs per-sample terms), one thread, the same trees (31 leaves, learning rate
0.05), interleaved in rounds; prints the best wall time of each and its ratio to the
built-in objective. Each custom objective computes the gradient and the exact Hessian
diagonal of the summed loss every round (``losses.derivatives``, float64). A benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import torch

# run as a script, this folder comes first on sys.path and bench/losses.py would shadow the
# package: take it off before importing losses (lossserve imports it too)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
lightgbm_objective = importlib.import_module("losses.gbdt").lightgbm_objective
load_dataset = importlib.import_module("lossserve.training").load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", default="page-blocks")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.dataset)
    x = np.concatenate([data.train.features, data.validation.features])
    y = np.concatenate([data.train.targets, data.validation.targets])
    common: dict[str, Any] = {
        "n_estimators": args.rounds,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "n_jobs": 1,
        "verbose": -1,
        "random_state": 0,
    }
    variants: dict[str, dict[str, Any]] = {
        "built-in multiclass": {},
        "focal (gamma 2)": {"objective": lightgbm_objective("focal", gamma=2.0)},
        "dice (scope sample)": {"objective": lightgbm_objective("dice", scope="sample")},
        "self_adjusting_dice (scope sample)": {
            "objective": lightgbm_objective("self_adjusting_dice", scope="sample")
        },
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, extra in variants.items():
            model = lightgbm.LGBMClassifier(**common, **extra)
            start = time.perf_counter()
            model.fit(x, y)
            times[name].append(time.perf_counter() - start)
    base = min(times["built-in multiclass"])
    print(
        f"{args.dataset}: {x.shape[0]} rows x {x.shape[1]} features, {len(np.unique(y))} "
        f"classes; {args.rounds} rounds, 1 thread, best of {args.repeats} interleaved"
    )
    print("| objective | time | ratio to built-in |")
    print("|---|---:|---:|")
    for name, measured in times.items():
        print(f"| {name} | {min(measured):.2f} s | {min(measured) / base:.2f}x |")


if __name__ == "__main__":
    main()
