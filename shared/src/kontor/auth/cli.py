"""`kontor-token`: mint a development JWT (HS256) for curl and tests."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from kontor.auth import ROLES, mint_token
from kontor.settings import DEV_JWT_SECRET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kontor-token", description=__doc__)
    parser.add_argument("--sub", required=True, help="user id, e.g. member-1")
    parser.add_argument("--role", action="append", choices=ROLES, required=True, help="repeatable")
    parser.add_argument("--name")
    parser.add_argument("--email")
    parser.add_argument("--hours", type=float, default=12)
    parser.add_argument("--secret", default=os.environ.get("KONTOR_JWT_SECRET", DEV_JWT_SECRET),
                        help="HS256 secret (default: $KONTOR_JWT_SECRET or the development secret)")
    args = parser.parse_args(argv)
    token = mint_token(args.secret, args.sub, args.role, name=args.name, email=args.email,
                       ttl=dt.timedelta(hours=args.hours))
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
