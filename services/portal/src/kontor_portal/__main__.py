"""`kontor-portal api` (also `python -m kontor_portal`): the portal on KONTOR_PORTAL_HTTP_PORT (8100)."""
from __future__ import annotations

import argparse
import sys

from kontor.logging import configure_logging, get_logger
from kontor.service import API_KEEPALIVE_S
from kontor_portal.settings import PortalSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kontor-portal")
    parser.add_argument("command", choices=["api"], nargs="?", default="api")
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    settings = PortalSettings()
    configure_logging(settings.log_level, settings.log_format, service=settings.service_name)
    import uvicorn

    get_logger(__name__).info("starting portal", url=settings.public_base_url)
    uvicorn.run("kontor_portal.entrypoints.app:create_app", factory=True, host=settings.http_host,
                port=settings.http_port, log_config=None, access_log=True, timeout_keep_alive=API_KEEPALIVE_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
