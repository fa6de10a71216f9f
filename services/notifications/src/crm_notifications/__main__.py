"""`python -m crm_notifications serve | migrate`."""

import crm_notifications
from crm_kit.runtime import run_service
from crm_notifications.service import register


def main() -> None:
    run_service("notifications", crm_notifications, register)


if __name__ == "__main__":
    main()
