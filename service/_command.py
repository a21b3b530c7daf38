"""The ``lossserve`` command's entry point: a one-line answer where the server extra is not
installed (``pip install lossserve`` alone is the loss library)."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as run
    except ModuleNotFoundError as missing:
        if (missing.name or "").startswith(("lossserve", "losses")):
            raise
        print(
            f"lossserve: {missing.name} is not installed; the server and the trainer need "
            "lossserve's server extra: pip install 'lossserve[server]' (from a clone: "
            "pip install ./proto '.[server]')",
            file=sys.stderr,
        )
        return 1
    return run()
