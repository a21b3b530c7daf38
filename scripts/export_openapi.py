"""Write the REST app's OpenAPI document to ``openapi/openapi.json`` (never edit that file).

The document is the one the app serves at ``/openapi.json``, built from
``lossserve.api.rest.create_app`` (no worker pool is started), written with sorted keys, an
indent of 2 and a trailing newline so that a diff shows what changed. Usage::

    python scripts/export_openapi.py            # rewrite openapi/openapi.json
    python scripts/export_openapi.py --out PATH # write PATH instead
    python scripts/export_openapi.py --check    # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "openapi" / "openapi.json"
COMMAND = "python scripts/export_openapi.py"


def document() -> dict[str, Any]:
    """The OpenAPI document the app serves."""
    if str(ROOT) not in sys.path:  # run as a script from a checkout that is not installed
        sys.path.insert(0, str(ROOT))
    from lossserve.api.rest import create_app
    from lossserve.core.state import ServiceState
    from lossserve.settings import Settings

    return create_app(ServiceState.create(Settings(devices=["cpu"]))).openapi()


def render(doc: dict[str, Any]) -> str:
    """The committed text of ``doc``: sorted keys, indent 2, UTF-8, a trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", type=Path, default=OUTPUT, help="write here instead")
    group.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        committed = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else None
        if committed != text:
            print(f"stale: {OUTPUT.relative_to(ROOT)} (run {COMMAND})", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
