from enum import StrEnum


class ThresholdsResponseKind(StrEnum):
    OFFSETS = "offsets"
    THRESHOLDS = "thresholds"

    def __str__(self) -> str:
        return str(self.value)
