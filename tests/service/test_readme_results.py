"""The README's advice quotes docs/results.md: every difference a bullet cites is in the
table of a dataset that bullet names, so regenerated tables that move a figure make this
fail until the advice is rewritten."""

from __future__ import annotations

import re
from pathlib import Path

from lossserve.training.datasets import PACKAGED_NAMES

ROOT = Path(__file__).resolve().parents[2]


def _sections(results: str) -> dict[str, str]:
    """Each dataset's section of the results, by name."""
    found = re.findall(
        r"<!-- experiment: (\S+) -->(.*?)<!-- end of experiment: \1 -->", results, re.S
    )
    return dict(found)


def test_every_difference_the_advice_cites_is_in_the_table_of_a_dataset_it_names() -> None:
    readme = (ROOT / "README.md").read_text()
    advice = readme.split("## Which loss?", 1)[1].split("\n## ", 1)[0]
    sections = _sections((ROOT / "docs" / "results.md").read_text())
    bullets = re.split(r"\n- ", advice)[1:]
    cited = 0
    for bullet in bullets:
        values = re.findall(r"[+-]\d\.\d{3}", bullet)
        if not values:
            continue
        named = [n for n in PACKAGED_NAMES if re.search(rf"\b{re.escape(n)}\b", bullet)]
        assert named, f"a bullet cites {values} and names no dataset: {bullet[:80]}"
        for name in named:
            assert name in sections, f"the README names {name}, which has no table"
        tables = "".join(sections[n] for n in named)
        missing = [v for v in values if v not in tables]
        assert not missing, f"{missing} are not in the tables of {named}"
        cited += len(values)
    assert cited >= 5, advice
