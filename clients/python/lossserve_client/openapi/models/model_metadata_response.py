from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.model_metadata_response_parameters import ModelMetadataResponseParameters
    from ..models.tensor_metadata import TensorMetadata


T = TypeVar("T", bound="ModelMetadataResponse")


@_attrs_define
class ModelMetadataResponse:
    """
    Attributes:
        inputs (list[TensorMetadata]):
        name (str):
        outputs (list[TensorMetadata]):
        parameters (ModelMetadataResponseParameters): execution_provider, task, labels (a JSON list), loss,
            threshold_kind.
        platform (str):
        versions (list[str]):
    """

    inputs: list[TensorMetadata]
    name: str
    outputs: list[TensorMetadata]
    parameters: ModelMetadataResponseParameters
    platform: str
    versions: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        inputs = []
        for inputs_item_data in self.inputs:
            inputs_item = inputs_item_data.to_dict()
            inputs.append(inputs_item)

        name = self.name

        outputs = []
        for outputs_item_data in self.outputs:
            outputs_item = outputs_item_data.to_dict()
            outputs.append(outputs_item)

        parameters = self.parameters.to_dict()

        platform = self.platform

        versions = self.versions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "inputs": inputs,
                "name": name,
                "outputs": outputs,
                "parameters": parameters,
                "platform": platform,
                "versions": versions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.model_metadata_response_parameters import ModelMetadataResponseParameters
        from ..models.tensor_metadata import TensorMetadata

        d = dict(src_dict)
        inputs = []
        _inputs = d.pop("inputs")
        for inputs_item_data in _inputs:
            inputs_item = TensorMetadata.from_dict(inputs_item_data)

            inputs.append(inputs_item)

        name = d.pop("name")

        outputs = []
        _outputs = d.pop("outputs")
        for outputs_item_data in _outputs:
            outputs_item = TensorMetadata.from_dict(outputs_item_data)

            outputs.append(outputs_item)

        parameters = ModelMetadataResponseParameters.from_dict(d.pop("parameters"))

        platform = d.pop("platform")

        versions = cast(list[str], d.pop("versions"))

        model_metadata_response = cls(
            inputs=inputs,
            name=name,
            outputs=outputs,
            parameters=parameters,
            platform=platform,
            versions=versions,
        )

        model_metadata_response.additional_properties = d
        return model_metadata_response

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
