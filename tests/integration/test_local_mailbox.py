"""The local mailbox: a real SMTP server, started by the local infrastructure, that keeps messages."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import pytest

from centricity_plumbing.localinfra import LOOPBACK, REFUSED_MAIL_DOMAIN, LocalInfrastructure, free_port
from centricity_plumbing.mailbox import ENVELOPE_TO_HEADER, clear, read_messages


def infrastructure(run_dir: Path) -> LocalInfrastructure:
    return LocalInfrastructure(
        kafka_port=free_port(), mongo_port=free_port(), smtp_port=free_port(), run_dir=run_dir
    )


@pytest.fixture(scope="module")
def mail_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfrastructure]:
    with infrastructure(tmp_path_factory.mktemp("mail-infra")) as running:
        yield running


@pytest.fixture
def infra_with_mail(mail_infra: LocalInfrastructure) -> LocalInfrastructure:
    clear(mail_infra.maildir)
    return mail_infra


def notification(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Centricity <notifications@centricity.example>"
    message["To"] = to
    message["Subject"] = "Your idea was shortlisted — well done"
    message["Message-ID"] = make_msgid(domain="centricity.example")
    message.set_content("Your idea «Faster refunds» was shortlisted.\n")
    message.add_alternative("<p>Your idea <b>«Faster refunds»</b> was shortlisted.</p>\n", subtype="html")
    return message


async def test_a_sent_message_is_kept_whole(infra_with_mail: LocalInfrastructure) -> None:
    infra = infra_with_mail
    assert infra.maildir == infra.run_dir / "mail"
    sent = notification("Ada <ada@retail.example>")

    await aiosmtplib.send(
        sent,
        hostname=infra.smtp_host,
        port=infra.smtp_port,
        recipients=["ada@retail.example", "audit@retail.example"],
    )

    [kept] = read_messages(infra.maildir)
    assert kept["Subject"] == sent["Subject"]
    assert kept["Message-ID"] == sent["Message-ID"]
    assert kept["To"] == "Ada <ada@retail.example>"
    assert kept["Return-Path"] == "<notifications@centricity.example>"
    assert kept[ENVELOPE_TO_HEADER] == "ada@retail.example, audit@retail.example"
    assert kept.get_content_type() == "multipart/alternative"
    plain = kept.get_body(("plain",))
    html = kept.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content() == "Your idea «Faster refunds» was shortlisted.\n"
    assert html.get_content() == "<p>Your idea <b>«Faster refunds»</b> was shortlisted.</p>\n"


async def test_messages_are_read_in_the_order_they_came(infra_with_mail: LocalInfrastructure) -> None:
    infra = infra_with_mail
    sent = [notification(f"user{n}@retail.example") for n in range(3)]
    for message in sent:
        await aiosmtplib.send(message, hostname=infra.smtp_host, port=infra.smtp_port)

    assert [m["Message-ID"] for m in read_messages(infra.maildir)] == [m["Message-ID"] for m in sent]


async def test_a_recipient_at_the_refused_domain_is_refused_and_nothing_is_kept(
    infra_with_mail: LocalInfrastructure,
) -> None:
    infra = infra_with_mail
    refused = f"nobody@{REFUSED_MAIL_DOMAIN}"

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as raised:
        await aiosmtplib.send(notification(refused), hostname=infra.smtp_host, port=infra.smtp_port)

    [error] = raised.value.recipients
    assert error.recipient == refused
    assert error.code == 550
    assert "5.1.1 mailbox unavailable" in error.message
    assert read_messages(infra.maildir) == []


def test_the_mailbox_stops_with_the_rest_and_its_mail_stays_on_disk(tmp_path: Path) -> None:
    infra = infrastructure(tmp_path / "run")
    with infra:
        asyncio.run(
            aiosmtplib.send(notification("ada@retail.example"), hostname=LOOPBACK, port=infra.smtp_port)
        )
        process = infra._processes["smtp"]
    assert process.returncode == 0, "the mailbox should exit cleanly on SIGTERM"
    assert infra.smtp_port is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, infra.smtp_port), timeout=1).close()
    assert len(read_messages(infra.maildir)) == 1


def test_readers_accept_a_maildir_that_does_not_exist(tmp_path: Path) -> None:
    clear(tmp_path / "missing")
    assert read_messages(tmp_path / "missing") == []
