"""`python -m crm_integrations serve | migrate`."""

import crm_integrations
from crm_integrations.service import register
from crm_kit.runtime import run_service


def main() -> None:
    run_service("integrations", crm_integrations, register)


if __name__ == "__main__":
    main()
