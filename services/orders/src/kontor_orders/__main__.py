"""`kontor-orders migrate|api|worker|asyncapi` (also `python -m kontor_orders`)."""
import sys

from kontor.service import main as service_main
from kontor_orders.spec import SPEC


def main() -> int:
    return service_main(SPEC, sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
