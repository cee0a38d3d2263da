"""A local SMTP server that keeps every message it accepts, in a Maildir, for `make run` and tests.

    python -m centricity_plumbing.mailbox --host 127.0.0.1 --port 2525 --maildir .local/run/mail

It is aiosmtpd's SMTP server: the services send to it with the same client they use against the
enterprise relay. Each accepted message is stored as the bytes received, with two header lines
put before them: `Return-Path` (the envelope sender) and `X-Centricity-Envelope-To` (the envelope
recipients, Bcc included). `--refuse-domain refused.example` makes it answer
`550 5.1.1 mailbox unavailable` to RCPT TO at that domain, for fault tests. SIGTERM or SIGINT stops
it cleanly. `read_messages` and `clear` read and empty the Maildir from tests and tools; they need
only the standard library, the server needs aiosmtpd (plumbing's `local` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import logging
import mailbox
import re
import signal
import sys
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("centricity_plumbing.mailbox")

SERVER_HOSTNAME = "centricity-mailbox"
ENVELOPE_TO_HEADER = "X-Centricity-Envelope-To"
REFUSED_REPLY = "550 5.1.1 mailbox unavailable"
# The stdlib names new Maildir messages "<seconds>.M<microseconds>P<pid>Q<count>.<host>".
_KEY = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.")
_FOLDERS = ("tmp", "new", "cur")


class MaildirHandler:
    """aiosmtpd handler: refuses recipients at the refused domains, stores each message."""

    def __init__(self, maildir: Path, refuse_domains: Iterable[str] = ()) -> None:
        # The stdlib creates a Maildir's folders only where nothing exists yet.
        for folder in _FOLDERS:
            (maildir / folder).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(maildir, create=False)
        self.refuse_domains = frozenset(domain.lower() for domain in refuse_domains)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if domain in self.refuse_domains:
            log.info("refused recipient %s", address)
            return REFUSED_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content
        if content is None:
            return "554 5.6.0 no message content"
        key = self.maildir.add(envelope_lines(envelope.mail_from, envelope.rcpt_tos) + content)
        log.info(
            "stored %s from %s to %s (%d bytes)",
            key,
            envelope.mail_from,
            ", ".join(envelope.rcpt_tos),
            len(content),
        )
        return "250 Message accepted for delivery"


def envelope_lines(mail_from: str | None, rcpt_tos: Sequence[str]) -> bytes:
    """The header lines that record the envelope, as a final delivery agent adds them."""
    lines = f"Return-Path: <{mail_from or ''}>\r\n{ENVELOPE_TO_HEADER}: {', '.join(rcpt_tos)}\r\n"
    return lines.encode("utf-8")


def _arrival(maildir: mailbox.Maildir, key: str) -> tuple[float, int, str]:
    """When a message came: from its stdlib-made name, else from its file's time."""
    match = _KEY.match(key)
    if match is not None:
        seconds, micros, _pid, count = (int(part) for part in match.groups())
        return (seconds + micros / 1_000_000, count, key)
    return (maildir.get_message(key).get_date(), 0, key)


def _keys_by_arrival(maildir: mailbox.Maildir) -> list[str]:
    return sorted(maildir.keys(), key=lambda key: _arrival(maildir, key))


def _existing(maildir: Path) -> mailbox.Maildir | None:
    if not all((maildir / folder).is_dir() for folder in _FOLDERS):
        return None
    return mailbox.Maildir(maildir, create=False)


def read_messages(maildir: Path) -> list[EmailMessage]:
    """Every message in the Maildir, oldest first, parsed with the default (modern) policy.

    The files keep the wire's CRLF line ends; they are read with LF ones, as the email package
    expects (SMTP carries no binary, so nothing else changes). A Maildir that does not exist yet
    (no message came) reads as empty.
    """
    box = _existing(maildir)
    if box is None:
        return []
    messages: list[EmailMessage] = []
    for key in _keys_by_arrival(box):
        raw = box.get_bytes(key).replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages


def clear(maildir: Path) -> None:
    """Remove every message from the Maildir (a missing Maildir is left missing)."""
    box = _existing(maildir)
    if box is not None:
        box.clear()


async def serve(host: str, port: int, maildir: Path, refuse_domains: Iterable[str] = ()) -> None:
    """Accept mail on host:port until SIGTERM or SIGINT."""
    from aiosmtpd.smtp import SMTP  # the `local` extra: readers above work without it

    handler = MaildirHandler(maildir, refuse_domains)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname=SERVER_HOSTNAME, enable_SMTPUTF8=True, loop=loop), host=host, port=port
    )
    log.info("SMTP on %s:%d, keeping messages in %s", host, port, maildir)
    try:
        await stopping.wait()
    finally:
        log.info("stopping")
        server.close()
        await server.wait_closed()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m centricity_plumbing.mailbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument(
        "--refuse-domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="answer 550 to recipients at this domain (may be given more than once)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # aiosmtpd logs every connection at INFO; keep its warnings and errors only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args.host, args.port, args.maildir, args.refuse_domain))


if __name__ == "__main__":
    main()
