from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..models.b64_tensor_dtype import B64TensorDtype

T = TypeVar("T", bound="B64Tensor")


@_attrs_define
class B64Tensor:
    """
    Attributes:
        b64 (str): Base64 of the little-endian raw bytes, C order.
        dtype (B64TensorDtype):
        shape (list[int]): Dimensions, e.g. [N, C].
    """

    b64: str
    dtype: B64TensorDtype
    shape: list[int]

    def to_dict(self) -> dict[str, Any]:
        b64 = self.b64

        dtype = self.dtype.value

        shape = self.shape

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "b64": b64,
                "dtype": dtype,
                "shape": shape,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        b64 = d.pop("b64")

        dtype = B64TensorDtype(d.pop("dtype"))

        shape = cast(list[int], d.pop("shape"))

        b64_tensor = cls(
            b64=b64,
            dtype=dtype,
            shape=shape,
        )

        return b64_tensor
