"""A local SMTP catcher (aiosmtpd) for `crm up`: the notifications service sends its
email here by default. Every message is stored as <state>/mail/<time>-<n>.eml and
announced with one line (time, from, to, subject) on stdout, i.e. in .state/logs/mail.log.

    python -m crm_cli.mailcatcher --port 1025 --dir .state/mail
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailDir:
    """The aiosmtpd handler: one .eml file per message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{next(self._counter)}.eml"
        path.write_bytes(data)
        mail = message_from_bytes(data, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        print(
            f"{datetime.now(UTC):%H:%M:%S} mail from={envelope.mail_from} "
            f"to={','.join(envelope.rcpt_tos)} subject={mail['Subject']!s} file={path.name}",
            flush=True,
        )
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_cli.mailcatcher")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".state/mail"))
    args = parser.parse_args()
    controller = Controller(MailDir(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail catcher on {args.host}:{args.port}, storing in {args.dir}", flush=True)

    async def wait() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
