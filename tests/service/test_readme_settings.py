"""The README's settings table names real settings, with their real defaults."""

from __future__ import annotations

import re
from pathlib import Path

from lossserve.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
MiB = 1024 * 1024


def _rows() -> dict[str, str]:
    """Each ``LOSSSERVE_*`` setting in the README's settings table, with its default text."""
    rows: dict[str, str] = {}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`LOSSSERVE_"):
            names = re.findall(r"`LOSSSERVE_([A-Z_]+)`", cells[0])
            defaults = [d.strip() for d in cells[1].split("/")]
            for index, name in enumerate(names):
                rows[name.lower()] = defaults[index] if len(defaults) == len(names) else ""
    return rows


def _value(text: str) -> float | None:
    match = re.fullmatch(r"([\d.,e]+)\s*(MiB|GiB|Mi)?", text)
    if match is None:
        return None
    number = float(match.group(1).replace(",", ""))
    return number * {"MiB": MiB, "GiB": 1024 * MiB, "Mi": MiB, None: 1}[match.group(2)]


def test_every_setting_the_readme_names_exists_with_that_default() -> None:
    rows = _rows()
    assert len(rows) >= 10, rows
    fields = Settings.model_fields
    for name, default in rows.items():
        assert name in fields, f"README names LOSSSERVE_{name.upper()}, no such setting"
        expected = _value(default)
        if expected is not None:
            assert fields[name].default == expected, (name, default, fields[name].default)
