"""`python -m crm_contacts serve | migrate`."""

from crm_kit.runtime import run_service

import crm_contacts
from crm_contacts.service import register


def main() -> None:
    run_service("contacts", crm_contacts, register)


if __name__ == "__main__":
    main()
