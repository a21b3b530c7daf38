from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.b64_tensor import B64Tensor
    from ..models.binary_tensor import BinaryTensor


T = TypeVar("T", bound="LossResponseBody")


@_attrs_define
class LossResponseBody:
    """
    Attributes:
        device (str):
        grad (B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None):
        hessian_diag (B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None):
        loss (str):
        reduction (str):
        value (B64Tensor | BinaryTensor | float | list[float | None] | list[list[float | None]] | None): A number for
            reduction mean or sum, else a tensor in the request's encoding; null when the number is not finite (JSON has no
            Inf or NaN).
    """

    device: str
    grad: B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None
    hessian_diag: B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None
    loss: str
    reduction: str
    value: B64Tensor | BinaryTensor | float | list[float | None] | list[list[float | None]] | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor

        device = self.device

        grad: dict[str, Any] | list[float | None] | list[list[float | None]] | None
        if isinstance(self.grad, list):
            grad = []
            for grad_type_0_item_data in self.grad:
                grad_type_0_item: float | None
                grad_type_0_item = grad_type_0_item_data
                grad.append(grad_type_0_item)

        elif isinstance(self.grad, list):
            grad = []
            for grad_type_1_item_data in self.grad:
                grad_type_1_item = []
                for grad_type_1_item_item_data in grad_type_1_item_data:
                    grad_type_1_item_item: float | None
                    grad_type_1_item_item = grad_type_1_item_item_data
                    grad_type_1_item.append(grad_type_1_item_item)

                grad.append(grad_type_1_item)

        elif isinstance(self.grad, B64Tensor) or isinstance(self.grad, BinaryTensor):
            grad = self.grad.to_dict()
        else:
            grad = self.grad

        hessian_diag: dict[str, Any] | list[float | None] | list[list[float | None]] | None
        if isinstance(self.hessian_diag, list):
            hessian_diag = []
            for hessian_diag_type_0_item_data in self.hessian_diag:
                hessian_diag_type_0_item: float | None
                hessian_diag_type_0_item = hessian_diag_type_0_item_data
                hessian_diag.append(hessian_diag_type_0_item)

        elif isinstance(self.hessian_diag, list):
            hessian_diag = []
            for hessian_diag_type_1_item_data in self.hessian_diag:
                hessian_diag_type_1_item = []
                for hessian_diag_type_1_item_item_data in hessian_diag_type_1_item_data:
                    hessian_diag_type_1_item_item: float | None
                    hessian_diag_type_1_item_item = hessian_diag_type_1_item_item_data
                    hessian_diag_type_1_item.append(hessian_diag_type_1_item_item)

                hessian_diag.append(hessian_diag_type_1_item)

        elif isinstance(self.hessian_diag, B64Tensor) or isinstance(
            self.hessian_diag, BinaryTensor
        ):
            hessian_diag = self.hessian_diag.to_dict()
        else:
            hessian_diag = self.hessian_diag

        loss = self.loss

        reduction = self.reduction

        value: dict[str, Any] | float | list[float | None] | list[list[float | None]] | None
        if isinstance(self.value, list):
            value = []
            for value_type_1_item_data in self.value:
                value_type_1_item: float | None
                value_type_1_item = value_type_1_item_data
                value.append(value_type_1_item)

        elif isinstance(self.value, list):
            value = []
            for value_type_2_item_data in self.value:
                value_type_2_item = []
                for value_type_2_item_item_data in value_type_2_item_data:
                    value_type_2_item_item: float | None
                    value_type_2_item_item = value_type_2_item_item_data
                    value_type_2_item.append(value_type_2_item_item)

                value.append(value_type_2_item)

        elif isinstance(self.value, B64Tensor) or isinstance(self.value, BinaryTensor):
            value = self.value.to_dict()
        else:
            value = self.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "device": device,
                "grad": grad,
                "hessian_diag": hessian_diag,
                "loss": loss,
                "reduction": reduction,
                "value": value,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor

        d = dict(src_dict)
        device = d.pop("device")

        def _parse_grad(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                grad_type_0 = []
                _grad_type_0 = data
                for grad_type_0_item_data in _grad_type_0:

                    def _parse_grad_type_0_item(data: object) -> float | None:
                        if data is None:
                            return data
                        return cast(float | None, data)

                    grad_type_0_item = _parse_grad_type_0_item(grad_type_0_item_data)

                    grad_type_0.append(grad_type_0_item)

                return grad_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                grad_type_1 = []
                _grad_type_1 = data
                for grad_type_1_item_data in _grad_type_1:
                    grad_type_1_item = []
                    _grad_type_1_item = grad_type_1_item_data
                    for grad_type_1_item_item_data in _grad_type_1_item:

                        def _parse_grad_type_1_item_item(data: object) -> float | None:
                            if data is None:
                                return data
                            return cast(float | None, data)

                        grad_type_1_item_item = _parse_grad_type_1_item_item(
                            grad_type_1_item_item_data
                        )

                        grad_type_1_item.append(grad_type_1_item_item)

                    grad_type_1.append(grad_type_1_item)

                return grad_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                grad_type_2 = B64Tensor.from_dict(data)

                return grad_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                grad_type_3 = BinaryTensor.from_dict(data)

                return grad_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None,
                data,
            )

        grad = _parse_grad(d.pop("grad"))

        def _parse_hessian_diag(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                hessian_diag_type_0 = []
                _hessian_diag_type_0 = data
                for hessian_diag_type_0_item_data in _hessian_diag_type_0:

                    def _parse_hessian_diag_type_0_item(data: object) -> float | None:
                        if data is None:
                            return data
                        return cast(float | None, data)

                    hessian_diag_type_0_item = _parse_hessian_diag_type_0_item(
                        hessian_diag_type_0_item_data
                    )

                    hessian_diag_type_0.append(hessian_diag_type_0_item)

                return hessian_diag_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                hessian_diag_type_1 = []
                _hessian_diag_type_1 = data
                for hessian_diag_type_1_item_data in _hessian_diag_type_1:
                    hessian_diag_type_1_item = []
                    _hessian_diag_type_1_item = hessian_diag_type_1_item_data
                    for hessian_diag_type_1_item_item_data in _hessian_diag_type_1_item:

                        def _parse_hessian_diag_type_1_item_item(data: object) -> float | None:
                            if data is None:
                                return data
                            return cast(float | None, data)

                        hessian_diag_type_1_item_item = _parse_hessian_diag_type_1_item_item(
                            hessian_diag_type_1_item_item_data
                        )

                        hessian_diag_type_1_item.append(hessian_diag_type_1_item_item)

                    hessian_diag_type_1.append(hessian_diag_type_1_item)

                return hessian_diag_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                hessian_diag_type_2 = B64Tensor.from_dict(data)

                return hessian_diag_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                hessian_diag_type_3 = BinaryTensor.from_dict(data)

                return hessian_diag_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                B64Tensor | BinaryTensor | list[float | None] | list[list[float | None]] | None,
                data,
            )

        hessian_diag = _parse_hessian_diag(d.pop("hessian_diag"))

        loss = d.pop("loss")

        reduction = d.pop("reduction")

        def _parse_value(
            data: object,
        ) -> (
            B64Tensor | BinaryTensor | float | list[float | None] | list[list[float | None]] | None
        ):
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                value_type_1 = []
                _value_type_1 = data
                for value_type_1_item_data in _value_type_1:

                    def _parse_value_type_1_item(data: object) -> float | None:
                        if data is None:
                            return data
                        return cast(float | None, data)

                    value_type_1_item = _parse_value_type_1_item(value_type_1_item_data)

                    value_type_1.append(value_type_1_item)

                return value_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                value_type_2 = []
                _value_type_2 = data
                for value_type_2_item_data in _value_type_2:
                    value_type_2_item = []
                    _value_type_2_item = value_type_2_item_data
                    for value_type_2_item_item_data in _value_type_2_item:

                        def _parse_value_type_2_item_item(data: object) -> float | None:
                            if data is None:
                                return data
                            return cast(float | None, data)

                        value_type_2_item_item = _parse_value_type_2_item_item(
                            value_type_2_item_item_data
                        )

                        value_type_2_item.append(value_type_2_item_item)

                    value_type_2.append(value_type_2_item)

                return value_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                value_type_3 = B64Tensor.from_dict(data)

                return value_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                value_type_4 = BinaryTensor.from_dict(data)

                return value_type_4
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                B64Tensor
                | BinaryTensor
                | float
                | list[float | None]
                | list[list[float | None]]
                | None,
                data,
            )

        value = _parse_value(d.pop("value"))

        loss_response_body = cls(
            device=device,
            grad=grad,
            hessian_diag=hessian_diag,
            loss=loss,
            reduction=reduction,
            value=value,
        )

        loss_response_body.additional_properties = d
        return loss_response_body

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
