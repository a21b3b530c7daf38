"""``python -m losses``: a short tour of the registry on a small imbalanced batch.

Prints every loss with its value, gradient norm and Hessian-diagonal range on the same
data, then the class weights of each strategy. ``make run`` runs it until the service lands.
"""

from __future__ import annotations

from typing import Any

import torch

import losses
from losses import Coupling, Task


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    n, c = 256, 5
    # A long tail: class c has about half the samples of class c-1.
    probs = torch.tensor([0.5**k for k in range(c)])
    labels = torch.multinomial(probs / probs.sum(), n, replacement=True, generator=generator)
    logits = torch.randn(n, c, generator=generator) + 2 * torch.nn.functional.one_hot(labels, c)
    multi_hot = (torch.rand(n, c, generator=generator) < probs / 2).float()
    prior = torch.bincount(labels, minlength=c).float().tolist()
    extra: dict[str, dict[str, Any]] = {
        "logit_adjusted_cross_entropy": {"class_prior": prior},
        "subset_softmax": {"max_k": 3},
    }

    print(f"lossserve losses: {len(losses.names())} registered; batch N={n}, C={c}")
    print(f"{'loss':38} {'task':11} {'value':>9} {'|grad|':>9} {'hessian diag range':>22}")
    for name in losses.names():
        spec = losses.get(name)
        task = Task.MULTICLASS if Task.MULTICLASS in spec.tasks else Task.MULTILABEL
        targets = labels if task is Task.MULTICLASS else multi_hot
        params = extra.get(name, {})
        hessian = spec.coupling(spec.validate(params), task) is not Coupling.BATCH
        d = losses.derivatives(name, logits, targets, hessian=hessian, **params)
        h = d.hessian_diag
        h_text = "-" if h is None else f"[{h.min().item():.2e}, {h.max().item():.2e}]"
        print(
            f"{name:38} {task.value:11} {d.value.item():9.4f} {d.grad.norm().item():9.4f} "
            f"{h_text:>22}"
        )
    print()
    print("class counts:", torch.bincount(labels, minlength=c).tolist())
    for strategy in losses.ClassWeightStrategy:
        weights = losses.class_weights(labels, strategy=strategy, num_classes=c)
        print(f"  {strategy.value:17} {[round(w, 3) for w in weights.tolist()]}")


if __name__ == "__main__":
    main()
