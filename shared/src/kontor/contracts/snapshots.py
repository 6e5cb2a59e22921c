"""JSON Schema snapshots of every contract, committed under `shared/contracts/`.

`python -m kontor.contracts.snapshots --write` regenerates them; a test fails when the
code and the committed snapshots differ, so a contract never changes unnoticed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kontor.contracts import all_contracts, json_schema

SNAPSHOT_DIR = Path(__file__).resolve().parents[3] / "contracts"


def published_contracts():
    return {t: c for t, c in all_contracts().items() if c.__module__.startswith("kontor.contracts.")}


def render(contract) -> str:
    return json.dumps(json_schema(contract), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    for event_type, contract in published_contracts().items():
        path = SNAPSHOT_DIR / f"{event_type}.schema.json"
        if args.write:
            path.write_text(render(contract))
            print(f"wrote {path}", file=sys.stderr)
        else:
            sys.stdout.write(render(contract))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
