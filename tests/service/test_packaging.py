"""The wheel holds every package of the server: pyproject.toml lists them one by one
(setuptools cannot discover packages renamed by ``package-dir``), so every folder of
``service/`` with an ``__init__.py`` must be listed, as ``lossserve.<path>``, and the loss
library beside it. ``tests/integration/test_install.py`` installs the wheel itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_package_of_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"lossserve": "service"}
    folders = {
        ".".join(("lossserve", *init.parent.relative_to(ROOT / "service").parts))
        for init in (ROOT / "service").rglob("__init__.py")
    }
    libraries = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "losses").rglob("__init__.py")
    }
    assert sorted(config["packages"]) == sorted(folders | libraries)
