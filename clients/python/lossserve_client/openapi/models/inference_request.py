from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.inference_request_parameters_type_0 import InferenceRequestParametersType0
    from ..models.request_input import RequestInput
    from ..models.request_output import RequestOutput


T = TypeVar("T", bound="InferenceRequest")


@_attrs_define
class InferenceRequest:
    """
    Attributes:
        inputs (list[RequestInput]):
        id (str | Unset):
        outputs (list[RequestOutput] | None | Unset): Default: every output.
        parameters (InferenceRequestParametersType0 | None | Unset): binary_data_output: answer every output as raw
            bytes.
    """

    inputs: list[RequestInput]
    id: str | Unset = UNSET
    outputs: list[RequestOutput] | None | Unset = UNSET
    parameters: InferenceRequestParametersType0 | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.inference_request_parameters_type_0 import InferenceRequestParametersType0

        inputs = []
        for inputs_item_data in self.inputs:
            inputs_item = inputs_item_data.to_dict()
            inputs.append(inputs_item)

        id = self.id

        outputs: list[dict[str, Any]] | None | Unset
        if isinstance(self.outputs, Unset):
            outputs = UNSET
        elif isinstance(self.outputs, list):
            outputs = []
            for outputs_type_0_item_data in self.outputs:
                outputs_type_0_item = outputs_type_0_item_data.to_dict()
                outputs.append(outputs_type_0_item)

        else:
            outputs = self.outputs

        parameters: dict[str, Any] | None | Unset
        if isinstance(self.parameters, Unset):
            parameters = UNSET
        elif isinstance(self.parameters, InferenceRequestParametersType0):
            parameters = self.parameters.to_dict()
        else:
            parameters = self.parameters

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "inputs": inputs,
            }
        )
        if id is not UNSET:
            field_dict["id"] = id
        if outputs is not UNSET:
            field_dict["outputs"] = outputs
        if parameters is not UNSET:
            field_dict["parameters"] = parameters

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.inference_request_parameters_type_0 import InferenceRequestParametersType0
        from ..models.request_input import RequestInput
        from ..models.request_output import RequestOutput

        d = dict(src_dict)
        inputs = []
        _inputs = d.pop("inputs")
        for inputs_item_data in _inputs:
            inputs_item = RequestInput.from_dict(inputs_item_data)

            inputs.append(inputs_item)

        id = d.pop("id", UNSET)

        def _parse_outputs(data: object) -> list[RequestOutput] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                outputs_type_0 = []
                _outputs_type_0 = data
                for outputs_type_0_item_data in _outputs_type_0:
                    outputs_type_0_item = RequestOutput.from_dict(outputs_type_0_item_data)

                    outputs_type_0.append(outputs_type_0_item)

                return outputs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[RequestOutput] | None | Unset, data)

        outputs = _parse_outputs(d.pop("outputs", UNSET))

        def _parse_parameters(data: object) -> InferenceRequestParametersType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                parameters_type_0 = InferenceRequestParametersType0.from_dict(data)

                return parameters_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(InferenceRequestParametersType0 | None | Unset, data)

        parameters = _parse_parameters(d.pop("parameters", UNSET))

        inference_request = cls(
            inputs=inputs,
            id=id,
            outputs=outputs,
            parameters=parameters,
        )

        return inference_request
