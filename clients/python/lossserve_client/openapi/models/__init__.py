"""Contains all the data models used in inputs/outputs"""

from .b64_tensor import B64Tensor
from .b64_tensor_dtype import B64TensorDtype
from .binary_tensor import BinaryTensor
from .binary_tensor_dtype import BinaryTensorDtype
from .class_metrics_body import ClassMetricsBody
from .class_weights_body import ClassWeightsBody
from .class_weights_body_strategy import ClassWeightsBodyStrategy
from .class_weights_response import ClassWeightsResponse
from .error_body import ErrorBody
from .error_info import ErrorInfo
from .error_info_details_item import ErrorInfoDetailsItem
from .evaluate_body import EvaluateBody
from .evaluate_body_params import EvaluateBodyParams
from .evaluate_response import EvaluateResponse
from .live_response import LiveResponse
from .loss_info_body import LossInfoBody
from .loss_info_body_params_schema import LossInfoBodyParamsSchema
from .loss_list_response import LossListResponse
from .loss_request_body import LossRequestBody
from .loss_request_body_params import LossRequestBodyParams
from .loss_request_body_reduction import LossRequestBodyReduction
from .loss_response_body import LossResponseBody
from .predict_body import PredictBody
from .predict_body_instances_type_1_item import PredictBodyInstancesType1Item
from .predict_response import PredictResponse
from .prediction_body import PredictionBody
from .prediction_body_probabilities import PredictionBodyProbabilities
from .ready_response import ReadyResponse
from .thresholds_body import ThresholdsBody
from .thresholds_response import ThresholdsResponse
from .thresholds_response_kind import ThresholdsResponseKind

__all__ = (
    "B64Tensor",
    "B64TensorDtype",
    "BinaryTensor",
    "BinaryTensorDtype",
    "ClassMetricsBody",
    "ClassWeightsBody",
    "ClassWeightsBodyStrategy",
    "ClassWeightsResponse",
    "ErrorBody",
    "ErrorInfo",
    "ErrorInfoDetailsItem",
    "EvaluateBody",
    "EvaluateBodyParams",
    "EvaluateResponse",
    "LiveResponse",
    "LossInfoBody",
    "LossInfoBodyParamsSchema",
    "LossListResponse",
    "LossRequestBody",
    "LossRequestBodyParams",
    "LossRequestBodyReduction",
    "LossResponseBody",
    "PredictBody",
    "PredictBodyInstancesType1Item",
    "PredictResponse",
    "PredictionBody",
    "PredictionBodyProbabilities",
    "ReadyResponse",
    "ThresholdsBody",
    "ThresholdsResponse",
    "ThresholdsResponseKind",
)
