from enum import StrEnum


class LossRequestBodyReduction(StrEnum):
    MEAN = "mean"
    NONE = "none"
    SUM = "sum"

    def __str__(self) -> str:
        return str(self.value)
