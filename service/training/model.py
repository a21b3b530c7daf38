"""The classifiers: a linear model or an MLP over standardised features.

The standardisation (training mean and standard deviation) lives in the model as buffers,
so the model, and the ONNX graph exported from it, take raw features.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from losses import Task

__all__ = ["ARCHITECTURES", "Architecture", "Classifier", "ExportedClassifier"]

Architecture = Literal["linear", "mlp"]
ARCHITECTURES: tuple[Architecture, ...] = ("linear", "mlp")


class Classifier(nn.Module):
    """Raw features ``(N, F)`` to logits ``(N, K)``: ``body((x - mean) / scale)``.

    ``linear`` is one ``Linear(F, K)``; ``mlp`` is two hidden layers of ``hidden`` ReLU
    units. ``scale`` is the training standard deviation, 1 where a feature is constant
    (as scikit-learn's ``StandardScaler``).
    """

    mean: Tensor
    inv_scale: Tensor

    def __init__(
        self,
        features: npt.NDArray[np.float32],
        num_outputs: int,
        *,
        architecture: Architecture = "mlp",
        hidden: int = 128,
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture: expected one of {', '.join(ARCHITECTURES)}, got {architecture!r}"
            )
        if hidden < 1:
            raise ValueError(f"hidden: expected at least 1 unit, got {hidden}")
        x = np.asarray(features, dtype=np.float64)
        std = x.std(axis=0)
        scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(x.mean(axis=0))), std, 1.0)
        self.register_buffer("mean", torch.from_numpy(x.mean(axis=0)).float())
        self.register_buffer("inv_scale", torch.from_numpy(1.0 / scale).float())
        self.architecture = architecture
        num_features = x.shape[1]
        self.body: nn.Module
        if architecture == "linear":
            self.body = nn.Linear(num_features, num_outputs)
        else:
            self.body = nn.Sequential(
                nn.Linear(num_features, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, num_outputs),
            )

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.body((features - self.mean) * self.inv_scale)
        return out


class ExportedClassifier(nn.Module):
    """What goes to ONNX: ``features`` to ``(logits, probabilities)``.

    Probabilities are the softmax over classes for multiclass and the per-column sigmoid
    otherwise; binary models have one column (the positive class's logit).
    """

    def __init__(self, classifier: Classifier, task: Task) -> None:
        super().__init__()
        self.classifier = classifier
        self.softmax = task is Task.MULTICLASS

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.classifier(features)
        probabilities = torch.softmax(logits, dim=-1) if self.softmax else torch.sigmoid(logits)
        return logits, probabilities
