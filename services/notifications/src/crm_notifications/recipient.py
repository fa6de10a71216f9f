"""Who a message goes to: the name, language, working hours and address it is written for."""

from __future__ import annotations

from dataclasses import dataclass

from crm_notifications.quiet import WorkingHours


@dataclass
class Recipient:
    name: str
    locale: str
    hours: WorkingHours
    address: str
