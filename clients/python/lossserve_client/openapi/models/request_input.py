from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..models.request_input_datatype import RequestInputDatatype
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.request_input_parameters_type_0 import RequestInputParametersType0


T = TypeVar("T", bound="RequestInput")


@_attrs_define
class RequestInput:
    """
    Attributes:
        datatype (RequestInputDatatype):
        name (str):
        shape (list[int]):
        data (list[Any] | Unset):
        parameters (None | RequestInputParametersType0 | Unset): binary_data_size: this input's raw bytes follow the
            JSON header (the binary tensor extension) instead of data.
    """

    datatype: RequestInputDatatype
    name: str
    shape: list[int]
    data: list[Any] | Unset = UNSET
    parameters: None | RequestInputParametersType0 | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.request_input_parameters_type_0 import RequestInputParametersType0

        datatype = self.datatype.value

        name = self.name

        shape = self.shape

        data: list[Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data

        parameters: dict[str, Any] | None | Unset
        if isinstance(self.parameters, Unset):
            parameters = UNSET
        elif isinstance(self.parameters, RequestInputParametersType0):
            parameters = self.parameters.to_dict()
        else:
            parameters = self.parameters

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "datatype": datatype,
                "name": name,
                "shape": shape,
            }
        )
        if data is not UNSET:
            field_dict["data"] = data
        if parameters is not UNSET:
            field_dict["parameters"] = parameters

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.request_input_parameters_type_0 import RequestInputParametersType0

        d = dict(src_dict)
        datatype = RequestInputDatatype(d.pop("datatype"))

        name = d.pop("name")

        shape = cast(list[int], d.pop("shape"))

        data = cast(list[Any], d.pop("data", UNSET))

        def _parse_parameters(data: object) -> None | RequestInputParametersType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                parameters_type_0 = RequestInputParametersType0.from_dict(data)

                return parameters_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RequestInputParametersType0 | Unset, data)

        parameters = _parse_parameters(d.pop("parameters", UNSET))

        request_input = cls(
            datatype=datatype,
            name=name,
            shape=shape,
            data=data,
            parameters=parameters,
        )

        return request_input
