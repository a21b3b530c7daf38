from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..models.loss_request_body_reduction import LossRequestBodyReduction
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.b64_tensor import B64Tensor
    from ..models.binary_tensor import BinaryTensor
    from ..models.loss_request_body_params import LossRequestBodyParams


T = TypeVar("T", bound="LossRequestBody")


@_attrs_define
class LossRequestBody:
    """
    Attributes:
        logits (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]):
        loss (str): A registry name, see GET /losses.
        targets (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]):
        params (LossRequestBodyParams | Unset): The loss's parameters.
        reduction (LossRequestBodyReduction | Unset):  Default: LossRequestBodyReduction.MEAN.
        return_grad (bool | Unset):  Default: False.
        return_hessian (bool | Unset):  Default: False.
        sample_weight (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]] | None | Unset):
    """

    logits: B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]
    loss: str
    targets: B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]
    params: LossRequestBodyParams | Unset = UNSET
    reduction: LossRequestBodyReduction | Unset = LossRequestBodyReduction.MEAN
    return_grad: bool | Unset = False
    return_hessian: bool | Unset = False
    sample_weight: (
        B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]] | None | Unset
    ) = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor

        logits: dict[str, Any] | list[bool | float] | list[list[bool | float]]
        if isinstance(self.logits, list):
            logits = []
            for logits_type_0_item_data in self.logits:
                logits_type_0_item: bool | float
                logits_type_0_item = logits_type_0_item_data
                logits.append(logits_type_0_item)

        elif isinstance(self.logits, list):
            logits = []
            for logits_type_1_item_data in self.logits:
                logits_type_1_item = []
                for logits_type_1_item_item_data in logits_type_1_item_data:
                    logits_type_1_item_item: bool | float
                    logits_type_1_item_item = logits_type_1_item_item_data
                    logits_type_1_item.append(logits_type_1_item_item)

                logits.append(logits_type_1_item)

        elif isinstance(self.logits, B64Tensor):
            logits = self.logits.to_dict()
        else:
            logits = self.logits.to_dict()

        loss = self.loss

        targets: dict[str, Any] | list[bool | float] | list[list[bool | float]]
        if isinstance(self.targets, list):
            targets = []
            for targets_type_0_item_data in self.targets:
                targets_type_0_item: bool | float
                targets_type_0_item = targets_type_0_item_data
                targets.append(targets_type_0_item)

        elif isinstance(self.targets, list):
            targets = []
            for targets_type_1_item_data in self.targets:
                targets_type_1_item = []
                for targets_type_1_item_item_data in targets_type_1_item_data:
                    targets_type_1_item_item: bool | float
                    targets_type_1_item_item = targets_type_1_item_item_data
                    targets_type_1_item.append(targets_type_1_item_item)

                targets.append(targets_type_1_item)

        elif isinstance(self.targets, B64Tensor):
            targets = self.targets.to_dict()
        else:
            targets = self.targets.to_dict()

        params: dict[str, Any] | Unset = UNSET
        if not isinstance(self.params, Unset):
            params = self.params.to_dict()

        reduction: str | Unset = UNSET
        if not isinstance(self.reduction, Unset):
            reduction = self.reduction.value

        return_grad = self.return_grad

        return_hessian = self.return_hessian

        sample_weight: dict[str, Any] | list[bool | float] | list[list[bool | float]] | None | Unset
        if isinstance(self.sample_weight, Unset):
            sample_weight = UNSET
        elif isinstance(self.sample_weight, list):
            sample_weight = []
            for sample_weight_type_0_item_data in self.sample_weight:
                sample_weight_type_0_item: bool | float
                sample_weight_type_0_item = sample_weight_type_0_item_data
                sample_weight.append(sample_weight_type_0_item)

        elif isinstance(self.sample_weight, list):
            sample_weight = []
            for sample_weight_type_1_item_data in self.sample_weight:
                sample_weight_type_1_item = []
                for sample_weight_type_1_item_item_data in sample_weight_type_1_item_data:
                    sample_weight_type_1_item_item: bool | float
                    sample_weight_type_1_item_item = sample_weight_type_1_item_item_data
                    sample_weight_type_1_item.append(sample_weight_type_1_item_item)

                sample_weight.append(sample_weight_type_1_item)

        elif isinstance(self.sample_weight, B64Tensor) or isinstance(
            self.sample_weight, BinaryTensor
        ):
            sample_weight = self.sample_weight.to_dict()
        else:
            sample_weight = self.sample_weight

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "logits": logits,
                "loss": loss,
                "targets": targets,
            }
        )
        if params is not UNSET:
            field_dict["params"] = params
        if reduction is not UNSET:
            field_dict["reduction"] = reduction
        if return_grad is not UNSET:
            field_dict["return_grad"] = return_grad
        if return_hessian is not UNSET:
            field_dict["return_hessian"] = return_hessian
        if sample_weight is not UNSET:
            field_dict["sample_weight"] = sample_weight

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor
        from ..models.loss_request_body_params import LossRequestBodyParams

        d = dict(src_dict)

        def _parse_logits(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                logits_type_0 = []
                _logits_type_0 = data
                for logits_type_0_item_data in _logits_type_0:

                    def _parse_logits_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    logits_type_0_item = _parse_logits_type_0_item(logits_type_0_item_data)

                    logits_type_0.append(logits_type_0_item)

                return logits_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                logits_type_1 = []
                _logits_type_1 = data
                for logits_type_1_item_data in _logits_type_1:
                    logits_type_1_item = []
                    _logits_type_1_item = logits_type_1_item_data
                    for logits_type_1_item_item_data in _logits_type_1_item:

                        def _parse_logits_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        logits_type_1_item_item = _parse_logits_type_1_item_item(
                            logits_type_1_item_item_data
                        )

                        logits_type_1_item.append(logits_type_1_item_item)

                    logits_type_1.append(logits_type_1_item)

                return logits_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                logits_type_2 = B64Tensor.from_dict(data)

                return logits_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            logits_type_3 = BinaryTensor.from_dict(data)

            return logits_type_3

        logits = _parse_logits(d.pop("logits"))

        loss = d.pop("loss")

        def _parse_targets(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                targets_type_0 = []
                _targets_type_0 = data
                for targets_type_0_item_data in _targets_type_0:

                    def _parse_targets_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    targets_type_0_item = _parse_targets_type_0_item(targets_type_0_item_data)

                    targets_type_0.append(targets_type_0_item)

                return targets_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                targets_type_1 = []
                _targets_type_1 = data
                for targets_type_1_item_data in _targets_type_1:
                    targets_type_1_item = []
                    _targets_type_1_item = targets_type_1_item_data
                    for targets_type_1_item_item_data in _targets_type_1_item:

                        def _parse_targets_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        targets_type_1_item_item = _parse_targets_type_1_item_item(
                            targets_type_1_item_item_data
                        )

                        targets_type_1_item.append(targets_type_1_item_item)

                    targets_type_1.append(targets_type_1_item)

                return targets_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                targets_type_2 = B64Tensor.from_dict(data)

                return targets_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            targets_type_3 = BinaryTensor.from_dict(data)

            return targets_type_3

        targets = _parse_targets(d.pop("targets"))

        _params = d.pop("params", UNSET)
        params: LossRequestBodyParams | Unset
        if isinstance(_params, Unset):
            params = UNSET
        else:
            params = LossRequestBodyParams.from_dict(_params)

        _reduction = d.pop("reduction", UNSET)
        reduction: LossRequestBodyReduction | Unset
        if isinstance(_reduction, Unset):
            reduction = UNSET
        else:
            reduction = LossRequestBodyReduction(_reduction)

        return_grad = d.pop("return_grad", UNSET)

        return_hessian = d.pop("return_hessian", UNSET)

        def _parse_sample_weight(
            data: object,
        ) -> (
            B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]] | None | Unset
        ):
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                sample_weight_type_0 = []
                _sample_weight_type_0 = data
                for sample_weight_type_0_item_data in _sample_weight_type_0:

                    def _parse_sample_weight_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    sample_weight_type_0_item = _parse_sample_weight_type_0_item(
                        sample_weight_type_0_item_data
                    )

                    sample_weight_type_0.append(sample_weight_type_0_item)

                return sample_weight_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                sample_weight_type_1 = []
                _sample_weight_type_1 = data
                for sample_weight_type_1_item_data in _sample_weight_type_1:
                    sample_weight_type_1_item = []
                    _sample_weight_type_1_item = sample_weight_type_1_item_data
                    for sample_weight_type_1_item_item_data in _sample_weight_type_1_item:

                        def _parse_sample_weight_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        sample_weight_type_1_item_item = _parse_sample_weight_type_1_item_item(
                            sample_weight_type_1_item_item_data
                        )

                        sample_weight_type_1_item.append(sample_weight_type_1_item_item)

                    sample_weight_type_1.append(sample_weight_type_1_item)

                return sample_weight_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                sample_weight_type_2 = B64Tensor.from_dict(data)

                return sample_weight_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                sample_weight_type_3 = BinaryTensor.from_dict(data)

                return sample_weight_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                B64Tensor
                | BinaryTensor
                | list[bool | float]
                | list[list[bool | float]]
                | None
                | Unset,
                data,
            )

        sample_weight = _parse_sample_weight(d.pop("sample_weight", UNSET))

        loss_request_body = cls(
            logits=logits,
            loss=loss,
            targets=targets,
            params=params,
            reduction=reduction,
            return_grad=return_grad,
            return_hessian=return_hessian,
            sample_weight=sample_weight,
        )

        return loss_request_body
