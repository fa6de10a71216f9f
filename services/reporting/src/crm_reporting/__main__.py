"""`python -m crm_reporting serve | migrate`."""

import crm_reporting
from crm_kit.runtime import run_service
from crm_reporting.service import register


def main() -> None:
    run_service("reporting", crm_reporting, register)


if __name__ == "__main__":
    main()
