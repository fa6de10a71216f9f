"""`python -m crm_tasks serve | migrate`."""

import crm_tasks
from crm_kit.runtime import run_service
from crm_tasks.service import register


def main() -> None:
    run_service("tasks", crm_tasks, register)


if __name__ == "__main__":
    main()
