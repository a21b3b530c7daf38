"""Figures of the losses, computed from the registry (matplotlib, PNG).

    python scripts/loss_figures.py [--out docs/figures]

- ``losses_vs_pt.png``: every registry loss, at its defaults, for one example whose true
  class has probability ``p_t`` (the focal loss paper's Figure 1): a binary positive with
  logit ``log(p_t / (1 - p_t))`` where the loss takes binary targets, else one of two
  classes with logits ``(0, log(p_t / (1 - p_t)))``, else a multilabel row of a positive
  and a negative label, both at ``p_t``; the Dice family with one example is its overlap
  with that example alone.
- ``self_adjusting_dice.png``: the self-adjusting Dice loss of one binary example against
  ``p``, for a positive and for a negative, at several ``alpha`` (per example, plain
  denominator, as the paper's eq. 11): at ``alpha`` near 1 the positive's loss is lowest at
  ``p = 1/2`` and the negative's is 0 at both ends, the degeneracies its docstring states.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

import losses
from losses import Task

REQUIRED: dict[str, dict[str, Any]] = {
    "logit_adjusted_cross_entropy": {"class_prior": [0.5, 0.5]},
    "subset_softmax": {"k": 1},
}
"""Parameters a loss cannot do without, for the two-class / one-label example."""


def loss_at(name: str, pt: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The loss of one example for each ``p_t`` (float64), and how the example was posed."""
    spec = losses.get(name)
    params = REQUIRED.get(name, {})
    z = torch.log(pt) - torch.log1p(-pt)
    values = []
    for logit in z:
        if Task.BINARY in spec.tasks:
            how = "binary positive"
            value = losses.compute(name, logit.reshape(1), torch.ones(1, dtype=pt.dtype), **params)
        elif Task.MULTICLASS in spec.tasks:
            how = "one of two classes"
            logits = torch.stack([torch.zeros((), dtype=pt.dtype), logit]).reshape(1, 2)
            value = losses.compute(name, logits, torch.ones(1, dtype=torch.long), **params)
        else:
            how = "a positive and a negative label"
            logits = torch.stack([logit, -logit]).reshape(1, 2)
            value = losses.compute(name, logits, torch.tensor([[1.0, 0.0]]), **params)
        values.append(value)
    return torch.stack(values), how


def self_adjusting_dice_curves(p: torch.Tensor, alpha: float) -> tuple[torch.Tensor, ...]:
    """Per-example loss of a positive and of a negative at probability ``p``."""
    z = torch.log(p) - torch.log1p(-p)
    params = {"alpha": alpha, "scope": "sample", "square_denominator": False}
    positive = losses.compute(
        "self_adjusting_dice", z, torch.ones_like(z), reduction="none", **params
    )
    negative = losses.compute(
        "self_adjusting_dice", z, torch.zeros_like(z), reduction="none", **params
    )
    return positive, negative


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    pt = torch.linspace(0.01, 0.99, 197, dtype=torch.float64)

    figure, axes = plt.subplots(figsize=(10, 6.5))
    colours = plt.get_cmap("tab20").colors
    for index, name in enumerate(losses.names()):
        values, how = loss_at(name, pt)
        axes.plot(
            pt.numpy(),
            values.numpy(),
            label=f"{name} ({how})",
            color=colours[index % len(colours)],
            linestyle=("-", "--", ":")[index % 3],
            linewidth=1.6,
        )
    axes.set_xlabel("probability of the true class, $p_t$")
    axes.set_ylabel("loss (defaults)")
    axes.set_ylim(0, 5)
    axes.set_title("Every registry loss of one example, at its defaults")
    axes.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    figure.savefig(args.out / "losses_vs_pt.png", dpi=110)
    plt.close(figure)

    p = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for alpha in (0.0, 0.01, 0.1, 0.5, 1.0):
        positive, negative = self_adjusting_dice_curves(p, alpha)
        left.plot(p.numpy(), positive.numpy(), label=f"alpha = {alpha:g}")
        right.plot(p.numpy(), negative.numpy(), label=f"alpha = {alpha:g}")
    left.set_title("a positive (y = 1)")
    right.set_title("a negative (y = 0)")
    for axes in (left, right):
        axes.set_xlabel("p")
        axes.axvline(0.5, color="grey", linewidth=0.5)
    left.set_ylabel("self-adjusting Dice loss of one example (smooth 1)")
    right.legend()
    figure.suptitle(
        "Self-adjusting Dice per example: at alpha near 1 a positive is pulled back to "
        "p = 1/2 and a negative's loss is 0 at both ends"
    )
    figure.tight_layout()
    figure.savefig(args.out / "self_adjusting_dice.png", dpi=110)
    plt.close(figure)
    print(f"wrote {args.out / 'losses_vs_pt.png'} and {args.out / 'self_adjusting_dice.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
