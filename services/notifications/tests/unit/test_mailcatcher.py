"""The SMTP catcher `crm up` starts keeps every message as an .eml file and logs a line."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from crm_cli.cluster import free_port
from crm_cli.mailcatcher import MailDir


async def test_the_catcher_stores_each_message_and_announces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    controller = Controller(MailDir(tmp_path / "mail"), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = EmailMessage()
        mail["From"] = "crm@example.com"
        mail["To"] = "mia@example.com"
        mail["Subject"] = "Neue Aufgabe: Aufmaß"
        mail.set_content("Fällig morgen")
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=port)
    finally:
        controller.stop()
    [stored] = list((tmp_path / "mail").glob("*.eml"))
    parsed = message_from_bytes(stored.read_bytes(), policy=policy.default)
    assert str(parsed["Subject"]) == "Neue Aufgabe: Aufmaß"
    line = capsys.readouterr().out
    assert "to=mia@example.com" in line and "Neue Aufgabe: Aufmaß" in line and stored.name in line
