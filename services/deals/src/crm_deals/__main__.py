"""`python -m crm_deals serve | migrate`."""

import crm_deals
from crm_deals.service import register
from crm_kit.runtime import run_service


def main() -> None:
    run_service("deals", crm_deals, register)


if __name__ == "__main__":
    main()
