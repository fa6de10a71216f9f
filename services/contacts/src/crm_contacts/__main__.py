"""`python -m crm_contacts serve | migrate`."""

import crm_contacts
from crm_contacts.service import register
from crm_kit.runtime import run_service


def main() -> None:
    run_service("contacts", crm_contacts, register)


if __name__ == "__main__":
    main()
