from enum import StrEnum


class ClassWeightsBodyStrategy(StrEnum):
    BALANCED = "balanced"
    EFFECTIVE_NUMBER = "effective_number"
    INVERSE = "inverse"
    INVERSE_SQRT = "inverse_sqrt"
    LOG_RATIO = "log_ratio"

    def __str__(self) -> str:
        return str(self.value)
