"""Training: built-in and user datasets, any registry loss, thresholds, ONNX export.

``train(TrainConfig(dataset="digits-lt", loss="focal", name="digits",
repository=Path("models")))`` trains, fits thresholds on the validation split, exports to
ONNX and writes ``models/digits/<version>/{model.onnx,card.json}``; ``run_experiment``
compares losses by repeated stratified K-fold.
"""

from .datasets import (
    BUILTIN_DATASETS,
    Dataset,
    Split,
    load_dataset,
    load_file,
)
from .experiment import ExperimentResult, ExperimentRow, Protocol, run_experiment
from .export import ExportError, export_onnx, publish, verify_onnx
from .pipeline import TrainConfig, TrainResult, evaluate_fit, train
from .thresholds import DecisionRule, fit_decision_rule, keeps_zero_threshold
from .trainer import CLASS_WEIGHT_PARAMS, FitResult, LossSetup, TrainOptions, fit, resolve_loss

__all__ = [
    "BUILTIN_DATASETS",
    "CLASS_WEIGHT_PARAMS",
    "Dataset",
    "DecisionRule",
    "ExperimentResult",
    "ExperimentRow",
    "ExportError",
    "FitResult",
    "LossSetup",
    "Protocol",
    "Split",
    "TrainConfig",
    "TrainOptions",
    "TrainResult",
    "evaluate_fit",
    "export_onnx",
    "fit",
    "fit_decision_rule",
    "keeps_zero_threshold",
    "load_dataset",
    "load_file",
    "publish",
    "resolve_loss",
    "run_experiment",
    "train",
    "verify_onnx",
]
