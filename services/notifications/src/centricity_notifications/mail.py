"""Email: notifications rendered as plain text and HTML, and sent over SMTP from the outbox.

Each notification's mail is sent once in effect: its document in the store is the outbox entry,
claimed with a lease before sending and marked sent after. A sender that dies between the two
leaves the lease to run out, and the mail is sent again under the same Message-ID, so receivers
that de-duplicate by it keep one. A refusal by the server (5xx) is final and recorded; anything
else is retried with exponential backoff and jitter until `mail_retry_for_s` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from jinja2 import Environment, select_autoescape

from centricity_contracts.notifications import Notification, NotificationKind
from centricity_notifications.domain import backoff
from centricity_notifications.store import NotificationStore
from centricity_plumbing.answerlinks import UNSUBSCRIBE, AnswerLink
from centricity_plumbing.clock import utc_now
from centricity_plumbing.mongo import Document

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
IDLE_POLL_S = 0.5

_html = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_text = Environment(autoescape=False)  # plain text, never shown as HTML

SUBJECTS = {
    NotificationKind.STATUS_CHANGED: "Your idea \u201c{title}\u201d is now {status}",
    NotificationKind.OFFICIAL_RESPONSE: "An official response to \u201c{title}\u201d",
    NotificationKind.MERGED: "\u201c{title}\u201d was merged into another idea",
    NotificationKind.DELIVERED: "Delivered: \u201c{title}\u201d. Did it help you?",
    NotificationKind.ATTESTATION_REMINDER: "Reminder: did \u201c{title}\u201d help you?",
}

TEXT = _text.from_string(
    """Hello{% if n.customer.display_name %} {{ n.customer.display_name }}{% endif %},

{% if n.kind == "status_changed" -%}
"{{ n.idea_title }}", an idea you follow, is now {{ label(n.to_status) }} (was {{ label(n.from_status) }}).
{%- elif n.kind == "official_response" -%}
There is an official response to the idea "{{ n.idea_title }}" that you follow:
{%- elif n.kind == "merged" -%}
The idea "{{ n.idea_title }}" that you follow was merged into another idea, which you now follow instead.
{%- elif n.kind == "delivered" -%}
The idea "{{ n.idea_title }}" that you follow has been delivered.
{%- else -%}
We asked you whether the delivered idea "{{ n.idea_title }}" helped you. We would still like to know.
{%- endif %}
{% if n.reason %}
{{ n.reason }}
{% endif %}{% if n.response %}
{{ n.response }}
{% endif %}{% if n.attestation %}
Did it help you? Answer here (no sign-in needed, until {{ n.attestation.expires_at.date() }}):
{{ n.attestation.url }}
{% endif %}
--
You get this because you follow this idea. Stop: {{ unsubscribe_url }}
"""
)

HTML = _html.from_string(
    """<!doctype html>
<html lang="en"><body style="font-family: system-ui, sans-serif; max-width: 36rem">
<p>Hello{% if n.customer.display_name %} {{ n.customer.display_name }}{% endif %},</p>
{% if n.kind == "status_changed" %}
<p>The idea <strong>{{ n.idea_title }}</strong> that you follow moved from {{ label(n.from_status) }}
to <strong>{{ label(n.to_status) }}</strong>.</p>
{% elif n.kind == "official_response" %}
<p>There is an official response to the idea <strong>{{ n.idea_title }}</strong> that you follow:</p>
{% elif n.kind == "merged" %}
<p>The idea <strong>{{ n.idea_title }}</strong> that you follow was merged into another idea, which you
now follow instead.</p>
{% elif n.kind == "delivered" %}
<p>The idea <strong>{{ n.idea_title }}</strong> that you follow has been delivered.</p>
{% else %}
<p>We asked you whether the delivered idea <strong>{{ n.idea_title }}</strong> helped you. We would
still like to know.</p>
{% endif %}
{% if n.reason %}<blockquote>{{ n.reason }}</blockquote>{% endif %}
{% if n.response %}<blockquote>{{ n.response }}</blockquote>{% endif %}
{% if n.attestation %}
<p><a href="{{ n.attestation.url }}" style="font-size: 1.2em">Did it help you? Answer in one click</a>
(no sign-in needed, until {{ n.attestation.expires_at.date() }}).</p>
{% endif %}
<hr><p style="color: #666; font-size: .9em">You get this because you follow this idea.
<a href="{{ unsubscribe_url }}">Stop getting mail about it</a>.</p>
</body></html>
"""
)


def label(status: object) -> str:
    return str(status or "").replace("_", " ")


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    timeout_s: float = 10.0
    start_tls: bool = False
    username: str = ""
    password: str = ""
    retry_for: timedelta = timedelta(hours=24)


# Headers are kept on one line up to RFC 5322's limit: a folded List-Unsubscribe would be encoded
# into RFC 2047 words, which no mail client reads as a link.
MAIL_POLICY = policy.default.clone(max_line_length=998)


def compose(notification: Notification, *, to: str, sender: str, unsubscribe_url: str) -> EmailMessage:
    message = EmailMessage(policy=MAIL_POLICY)
    status = label(notification.to_status)
    message["Subject"] = SUBJECTS[notification.kind].format(title=notification.idea_title, status=status)
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(notification.requested_at)
    # The notification id is the idempotency key of every delivery of it.
    message["Message-ID"] = f"<{notification.notification_id}@centricity>"
    message["X-Centricity-Notification-Id"] = notification.notification_id
    message["X-Centricity-Idea-Id"] = notification.idea_id
    # RFC 8058 one-click unsubscribe: mail clients POST to the link, with this body.
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    context = {"n": notification, "label": label, "unsubscribe_url": unsubscribe_url}
    message.set_content(TEXT.render(**context))
    message.add_alternative(HTML.render(**context), subtype="html")
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as sent, flattened with MAIL_POLICY (aiosmtplib's own would fold at 78)."""
    out = io.BytesIO()
    BytesGenerator(out, policy=MAIL_POLICY.clone(linesep="\r\n")).flatten(message)
    return out.getvalue()


def permanent(error: Exception) -> bool:
    """A refusal the server means (5xx): sending the same mail again cannot succeed."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in error.recipients)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500
    return False


class MailSender:
    """Sends the mail of stored notifications, one at a time per process, until cancelled."""

    def __init__(
        self, store: NotificationStore, settings: MailSettings, unsubscribe_url: UnsubscribeUrl
    ) -> None:
        self.store = store
        self.settings = settings
        self.unsubscribe_url = unsubscribe_url
        self.due = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                while await self.send_one():
                    pass
            except Exception:  # the store or server is away: the mail stays due
                log.exception("sending mail failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.due.wait(), IDLE_POLL_S)
            self.due.clear()

    async def send_one(self) -> bool:
        now = utc_now()
        doc = await self.store.claim_mail(now=now, lease_until=now + LEASE)
        if doc is None:
            return False
        await self._send(doc, now)
        return True

    async def _send(self, doc: Document, now: datetime) -> None:
        notification = Notification.model_validate(doc["notification"])
        message = compose(
            notification,
            to=doc["mail"]["to"],
            sender=self.settings.sender,
            unsubscribe_url=self.unsubscribe_url(notification),
        )
        try:
            await aiosmtplib.send(
                wire_bytes(message),
                sender=parseaddr(self.settings.sender)[1],
                recipients=[doc["mail"]["to"]],
                hostname=self.settings.host,
                port=self.settings.port,
                timeout=self.settings.timeout_s,
                start_tls=self.settings.start_tls,
                username=self.settings.username or None,
                password=self.settings.password or None,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            await self._failed(doc, error, now)
            return
        await self.store.mail_sent(notification.notification_id, at=utc_now())

    async def _failed(self, doc: Document, error: Exception, now: datetime) -> None:
        notification_id = doc["_id"]
        reason = f"{type(error).__name__}: {error}"[:1000]
        first = datetime.fromisoformat(doc["mail"]["first_at"])
        if permanent(error) or now - first > self.settings.retry_for:
            log.warning("mail of notification %s failed for good: %s", notification_id, reason)
            await self.store.mail_failed(notification_id, error=reason)
            return
        await self.store.mail_retry(
            notification_id, error=reason, next_at=now + backoff(int(doc["mail"].get("attempts", 1)))
        )


class UnsubscribeUrl:
    """The one-click unsubscribe link of a notification's mail."""

    def __init__(self, base_url: str, secret: str, valid_for: timedelta) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.valid_for = valid_for

    def __call__(self, notification: Notification) -> str:
        link = AnswerLink(
            link_id=notification.notification_id,
            idea_id=notification.idea_id,
            businessunit=notification.customer_businessunit,
            customer=notification.customer,
            expires_at=notification.requested_at + self.valid_for,
            purpose=UNSUBSCRIBE,
        )
        return f"{self.base_url}/unsubscribe-links/{link.encode(self.secret)}"
