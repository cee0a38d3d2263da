"""Wiring of the notifications service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pydantic import Field, SecretStr

from centricity_notifications.api import notifications_router
from centricity_notifications.consumers import register_subscribers
from centricity_notifications.domain import ReminderPolicy
from centricity_notifications.mail import MailSender, MailSettings, UnsubscribeUrl
from centricity_notifications.service import Links, Notifier
from centricity_notifications.store import NotificationStore
from centricity_notifications.webhooks import WebhookSender, WebhookSettings
from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.outbox import Outbox
from centricity_plumbing.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8104
    smtp_host: str = Field(
        default="127.0.0.1", description="The SMTP server notifications are mailed through."
    )
    smtp_port: int = 2525
    smtp_start_tls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    mail_from: str = Field(
        default="Centricity <notifications@centricity.example>", description="From: of every mail."
    )
    mail_retry_for_s: float = Field(
        default=86_400,
        ge=0,
        description="How long a mail the server does not take is retried before it fails.",
    )
    answer_base_url: str = Field(
        default="http://127.0.0.1:8101",
        description="Where customers reach the ideas service, whose pages take attestation links' answers.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8104", description="Where customers reach this service (unsubscribe links)."
    )
    answer_link_valid_days: float = Field(default=60, gt=0, description="How long an attestation link works.")
    reminder_after_s: float = Field(
        default=7 * 86_400, gt=0, description="Remind a customer who has not answered after this long."
    )
    reminders_at_most: int = Field(default=2, ge=0, le=10, description="Reminders per question, at most.")
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="How long an endpoint has to answer."
    )
    webhook_retry_for_s: float = Field(
        default=86_400, ge=0, description="How long a failing delivery is retried before it is dead-lettered."
    )
    webhook_concurrency: int = Field(default=8, ge=1, le=64, description="Deliveries in flight per process.")
    webhook_allow_private_targets: bool = Field(
        default=False, description="Allow endpoints on loopback and private addresses (local development)."
    )

    webhook_endpoints_per_unit: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Live endpoints a unit may have: each delivery is sent to every one of them.",
    )

    def webhook_settings(self) -> WebhookSettings:
        return WebhookSettings(
            timeout_s=self.webhook_timeout_s,
            retry_for=timedelta(seconds=self.webhook_retry_for_s),
            concurrency=self.webhook_concurrency,
            allow_private_targets=self.webhook_allow_private_targets,
            endpoints_per_unit=self.webhook_endpoints_per_unit,
        )

    def reminder_policy(self) -> ReminderPolicy:
        return ReminderPolicy(
            after=timedelta(seconds=self.reminder_after_s),
            at_most=self.reminders_at_most,
            link_valid_for=timedelta(days=self.answer_link_valid_days),
        )

    def mail_settings(self) -> MailSettings:
        return MailSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.mail_from,
            start_tls=self.smtp_start_tls,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value(),
            retry_for=timedelta(seconds=self.mail_retry_for_s),
        )


def create_app(
    settings: NotificationsSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(settings, tracer_provider)
    store = NotificationStore(runtime.store.db)
    secret = settings.answer_link_secret.get_secret_value()
    reminders = settings.reminder_policy()
    links = Links(settings.answer_base_url, secret, reminders.link_valid_for)
    notifier = Notifier(
        store,
        Outbox(store.notifications, runtime.broker),
        source=settings.fact_source(),
        links=links,
        reminders=reminders,
        webhooks=settings.webhook_settings(),
    )
    mail = MailSender(
        store, settings.mail_settings(), UnsubscribeUrl(settings.public_url, secret, reminders.link_valid_for)
    )
    notifier.mail_due = mail.due
    webhooks = WebhookSender(store, settings.webhook_settings())
    backlogs = {
        "outbox": notifier.outbox.waiting,
        "notifications_untold": store.changes_waiting,
        "mail_unsent": store.mail_waiting,
        "webhooks_undelivered": store.deliveries_waiting,
    }
    notifier.webhook_due = webhooks.due
    register_subscribers(runtime.broker, notifier, settings, runtime.tracer_provider)
    return create_service_app(
        runtime,
        title="Centricity notifications",
        description="Tells customers when ideas they follow move, asks the authors and voters of a delivered "
        "idea whether it helped (with a link that needs no sign-in), reminds them, and mails it all; "
        "every notification is also a fact on notifications.v1 for the business unit that owns the "
        "relationship with the customer.",
        version="0.1.0",
        routers=[notifications_router(notifier)],
        before_start=[store.create_indexes],
        background=[notifier.keep_telling, mail.run, webhooks.run],
        backlogs=backlogs,
    )


def run() -> None:
    settings = NotificationsSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
