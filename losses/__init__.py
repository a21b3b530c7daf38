"""lossserve's loss library: every loss used against class imbalance, with derivatives.

>>> import losses, torch
>>> "focal" in losses.names()
True
>>> logits, targets = torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])
>>> round(losses.compute("cross_entropy", logits, targets).item(), 4)
1.0986
"""

from ._api import compute, derivatives, get, names
from ._asymmetric import AsymmetricLoss, AsymmetricParams, asymmetric_loss
from ._binary_cross_entropy import (
    BinaryCrossEntropyLoss,
    BinaryCrossEntropyParams,
    binary_cross_entropy_loss,
)
from ._circle import CircleLoss, CircleParams, circle_loss
from ._class_weights import (
    ClassWeightsParams,
    ClassWeightStrategy,
    class_weights,
)
from ._cross_entropy import CrossEntropyLoss, CrossEntropyParams, cross_entropy_loss
from ._derivatives import Derivatives
from ._dice import (
    DiceLoss,
    DiceParams,
    SelfAdjustingDiceLoss,
    SelfAdjustingDiceParams,
    TverskyLoss,
    TverskyParams,
    dice_loss,
    self_adjusting_dice_loss,
    tversky_loss,
)
from ._focal import FocalLoss, FocalParams, focal_loss
from ._hinge import HingeLoss, HingeParams, hinge_loss
from ._logit_adjusted import (
    LogitAdjustedCrossEntropyLoss,
    LogitAdjustedCrossEntropyParams,
    logit_adjusted_cross_entropy_loss,
)
from ._power_bce import PowerBCELoss, PowerBCEParams, power_bce_loss
from ._ranking import RankingLoss, RankingParams, ranking_loss
from ._reduction import Reduction
from ._registry import Coupling, LossModule, LossSpec
from ._sigmoid_focal import SigmoidFocalLoss, SigmoidFocalParams, sigmoid_focal_loss
from ._squared_error import SquaredErrorLoss, SquaredErrorParams, squared_error_loss
from ._subset_softmax import SubsetSoftmaxLoss, SubsetSoftmaxParams, subset_softmax_loss
from ._validation import LossParameterError, Task, infer_task
from ._zlpr import (
    MultilabelCategoricalCrossentropyLoss,
    MultilabelCategoricalCrossentropyParams,
    multilabel_categorical_crossentropy_loss,
)

__all__ = [
    "AsymmetricLoss",
    "AsymmetricParams",
    "BinaryCrossEntropyLoss",
    "BinaryCrossEntropyParams",
    "CircleLoss",
    "CircleParams",
    "ClassWeightStrategy",
    "ClassWeightsParams",
    "Coupling",
    "CrossEntropyLoss",
    "CrossEntropyParams",
    "Derivatives",
    "DiceLoss",
    "DiceParams",
    "FocalLoss",
    "FocalParams",
    "HingeLoss",
    "HingeParams",
    "LogitAdjustedCrossEntropyLoss",
    "LogitAdjustedCrossEntropyParams",
    "LossModule",
    "LossParameterError",
    "LossSpec",
    "MultilabelCategoricalCrossentropyLoss",
    "MultilabelCategoricalCrossentropyParams",
    "PowerBCELoss",
    "PowerBCEParams",
    "RankingLoss",
    "RankingParams",
    "Reduction",
    "SelfAdjustingDiceLoss",
    "SelfAdjustingDiceParams",
    "SigmoidFocalLoss",
    "SigmoidFocalParams",
    "SquaredErrorLoss",
    "SquaredErrorParams",
    "SubsetSoftmaxLoss",
    "SubsetSoftmaxParams",
    "Task",
    "TverskyLoss",
    "TverskyParams",
    "asymmetric_loss",
    "binary_cross_entropy_loss",
    "circle_loss",
    "class_weights",
    "compute",
    "cross_entropy_loss",
    "derivatives",
    "dice_loss",
    "focal_loss",
    "get",
    "hinge_loss",
    "infer_task",
    "logit_adjusted_cross_entropy_loss",
    "multilabel_categorical_crossentropy_loss",
    "names",
    "power_bce_loss",
    "ranking_loss",
    "self_adjusting_dice_loss",
    "sigmoid_focal_loss",
    "squared_error_loss",
    "subset_softmax_loss",
    "tversky_loss",
]
