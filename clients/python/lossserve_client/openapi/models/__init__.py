"""Contains all the data models used in inputs/outputs"""

from .b64_tensor import B64Tensor
from .b64_tensor_dtype import B64TensorDtype
from .batch_statistics import BatchStatistics
from .binary_tensor import BinaryTensor
from .binary_tensor_dtype import BinaryTensorDtype
from .class_metrics_body import ClassMetricsBody
from .class_weights_body import ClassWeightsBody
from .class_weights_body_strategy import ClassWeightsBodyStrategy
from .class_weights_response import ClassWeightsResponse
from .duration import Duration
from .error_body import ErrorBody
from .error_info import ErrorInfo
from .error_info_details_item import ErrorInfoDetailsItem
from .evaluate_body import EvaluateBody
from .evaluate_body_params import EvaluateBodyParams
from .evaluate_response import EvaluateResponse
from .inference_request import InferenceRequest
from .inference_request_parameters_type_0 import InferenceRequestParametersType0
from .inference_response import InferenceResponse
from .inference_response_parameters_type_0 import InferenceResponseParametersType0
from .inference_statistics import InferenceStatistics
from .live_response import LiveResponse
from .loss_info_body import LossInfoBody
from .loss_info_body_params_schema import LossInfoBodyParamsSchema
from .loss_list_response import LossListResponse
from .loss_request_body import LossRequestBody
from .loss_request_body_params import LossRequestBodyParams
from .loss_request_body_reduction import LossRequestBodyReduction
from .loss_response_body import LossResponseBody
from .model_config_response_200 import ModelConfigResponse200
from .model_metadata_response import ModelMetadataResponse
from .model_metadata_response_parameters import ModelMetadataResponseParameters
from .model_ready_response import ModelReadyResponse
from .model_statistics import ModelStatistics
from .model_statistics_response import ModelStatisticsResponse
from .model_version_config_response_200 import ModelVersionConfigResponse200
from .oip_error import OIPError
from .predict_body import PredictBody
from .predict_body_instances_type_1_item import PredictBodyInstancesType1Item
from .predict_response import PredictResponse
from .prediction_body import PredictionBody
from .prediction_body_probabilities import PredictionBodyProbabilities
from .ready_response import ReadyResponse
from .repository_index_body import RepositoryIndexBody
from .repository_index_entry import RepositoryIndexEntry
from .repository_model_body import RepositoryModelBody
from .repository_model_body_parameters_type_0 import RepositoryModelBodyParametersType0
from .repository_response import RepositoryResponse
from .request_input import RequestInput
from .request_input_datatype import RequestInputDatatype
from .request_input_parameters_type_0 import RequestInputParametersType0
from .request_output import RequestOutput
from .request_output_parameters_type_0 import RequestOutputParametersType0
from .response_output import ResponseOutput
from .response_output_datatype import ResponseOutputDatatype
from .response_output_parameters_type_0 import ResponseOutputParametersType0
from .server_metadata_response import ServerMetadataResponse
from .shared_memory_region import SharedMemoryRegion
from .shared_memory_register_body import SharedMemoryRegisterBody
from .tensor_metadata import TensorMetadata
from .tensor_metadata_datatype import TensorMetadataDatatype
from .thresholds_body import ThresholdsBody
from .thresholds_response import ThresholdsResponse
from .thresholds_response_kind import ThresholdsResponseKind

__all__ = (
    "B64Tensor",
    "B64TensorDtype",
    "BatchStatistics",
    "BinaryTensor",
    "BinaryTensorDtype",
    "ClassMetricsBody",
    "ClassWeightsBody",
    "ClassWeightsBodyStrategy",
    "ClassWeightsResponse",
    "Duration",
    "ErrorBody",
    "ErrorInfo",
    "ErrorInfoDetailsItem",
    "EvaluateBody",
    "EvaluateBodyParams",
    "EvaluateResponse",
    "InferenceRequest",
    "InferenceRequestParametersType0",
    "InferenceResponse",
    "InferenceResponseParametersType0",
    "InferenceStatistics",
    "LiveResponse",
    "LossInfoBody",
    "LossInfoBodyParamsSchema",
    "LossListResponse",
    "LossRequestBody",
    "LossRequestBodyParams",
    "LossRequestBodyReduction",
    "LossResponseBody",
    "ModelConfigResponse200",
    "ModelMetadataResponse",
    "ModelMetadataResponseParameters",
    "ModelReadyResponse",
    "ModelStatistics",
    "ModelStatisticsResponse",
    "ModelVersionConfigResponse200",
    "OIPError",
    "PredictBody",
    "PredictBodyInstancesType1Item",
    "PredictResponse",
    "PredictionBody",
    "PredictionBodyProbabilities",
    "ReadyResponse",
    "RepositoryIndexBody",
    "RepositoryIndexEntry",
    "RepositoryModelBody",
    "RepositoryModelBodyParametersType0",
    "RepositoryResponse",
    "RequestInput",
    "RequestInputDatatype",
    "RequestInputParametersType0",
    "RequestOutput",
    "RequestOutputParametersType0",
    "ResponseOutput",
    "ResponseOutputDatatype",
    "ResponseOutputParametersType0",
    "ServerMetadataResponse",
    "SharedMemoryRegion",
    "SharedMemoryRegisterBody",
    "TensorMetadata",
    "TensorMetadataDatatype",
    "ThresholdsBody",
    "ThresholdsResponse",
    "ThresholdsResponseKind",
)
