from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..models.binary_tensor_dtype import BinaryTensorDtype

T = TypeVar("T", bound="BinaryTensor")


@_attrs_define
class BinaryTensor:
    """Binary encoding only: the bytes follow the JSON header, in order of appearance.

    Attributes:
        binary_data_size (int):
        dtype (BinaryTensorDtype):
        shape (list[int]):
    """

    binary_data_size: int
    dtype: BinaryTensorDtype
    shape: list[int]

    def to_dict(self) -> dict[str, Any]:
        binary_data_size = self.binary_data_size

        dtype = self.dtype.value

        shape = self.shape

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "binary_data_size": binary_data_size,
                "dtype": dtype,
                "shape": shape,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        binary_data_size = d.pop("binary_data_size")

        dtype = BinaryTensorDtype(d.pop("dtype"))

        shape = cast(list[int], d.pop("shape"))

        binary_tensor = cls(
            binary_data_size=binary_data_size,
            dtype=dtype,
            shape=shape,
        )

        return binary_tensor
