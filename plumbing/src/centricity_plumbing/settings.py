"""Service settings, read from environment variables prefixed `CENTRICITY_`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CENTRICITY_"


class BusinessUnitConfig(BaseModel):
    """A business unit that may write to Centricity, and the API key its systems use."""

    name: str
    api_key: SecretStr
    enterprise: bool = Field(default=False, description="May launch enterprise-wide campaigns.")
    write_rate_limit: str | None = Field(
        default=None,
        description="This unit's HTTP write limit, e.g. `50/second`; the service default if unset.",
    )


class ServiceSettings(BaseSettings):
    """Settings every service shares. Each service subclasses it to set its own defaults.

    Nested values are JSON, e.g.
    `CENTRICITY_BUSINESS_UNITS='{"retail": {"name": "Retail", "api_key": "..."}}'`.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    service_name: str
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_group_id: str | None = Field(
        default=None, description="Consumer group; defaults to `centricity-<service_name>`."
    )
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_max_poll_records: int = 500
    # Kafka client security. The defaults (PLAINTEXT, no SASL) are what the local broker speaks;
    # a Strimzi cluster with KafkaUser SCRAM credentials uses SASL_SSL with its cluster CA.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = Field(
        default="", description="CA certificates (PEM) to trust for TLS; the system's when empty."
    )
    mongo_url: str = "mongodb://127.0.0.1:37017/?directConnection=true"
    mongo_database: str = ""
    business_units: dict[str, BusinessUnitConfig] = Field(default_factory=dict)
    intake_signatures: Literal["optional", "required"] = Field(
        default="optional",
        description="required: every intake event must carry an HMAC of its body made with its unit's "
        "API key; optional: only events that carry one are checked.",
    )
    http_write_rate_limit: str = Field(
        default="200/second",
        description="HTTP writes each business unit may make to a service, all replicas together, e.g. "
        "`100/minute`.",
    )
    store_timeout_ms: int = Field(
        default=2000,
        ge=100,
        description="How long a request waits for an unreachable store before it is answered 503.",
    )
    unavailable_retry_after_s: int = Field(
        default=5, ge=1, description="The Retry-After of a 503 answered while the store or broker is down."
    )
    http_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest HTTP request body; a larger one is answered 413 before it is parsed.",
    )
    oidc_issuer: str = Field(
        default="",
        description="The OpenID Connect provider whose JWTs sign people in (its discovery document is "
        "below it); empty: only API keys are accepted.",
    )
    oidc_audience: str = Field(default="centricity", description="The `aud` a token must carry.")
    oidc_jwks_url: str = Field(default="", description="The provider's JWKS; from discovery when empty.")
    oidc_jwks_cache_s: int = Field(default=300, ge=1, description="How long signing keys are cached.")
    oidc_leeway_s: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp and iat.")
    oidc_client_id: str = Field(default="centricity", description="This platform's client at the provider.")
    oidc_client_secret: SecretStr = Field(default=SecretStr(""), description="Its secret (sign-in pages).")
    oidc_roles_claim: str = "centricity_roles"
    oidc_businessunit_claim: str = "centricity_businessunit"
    oidc_customer_id_claim: str = "centricity_customer_id"
    oidc_customer_type_claim: str = "centricity_customer_type"
    session_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Signs the session cookies of sign-in pages; set the same one on every replica. "
        "Empty: a random one per process (sessions end with it).",
    )
    pseudonym_secret: SecretStr = Field(
        default=SecretStr("dev-pseudonyms"),
        description="Keys the stable pseudonyms under which customers appear to those who may not see "
        "them; set a secret of your own, the same on every service and replica.",
    )
    answer_link_secret: SecretStr = Field(
        default=SecretStr("dev-answer-links-not-for-production"),
        description="Signs the links that let customers answer whether a delivered idea helped without "
        "signing in; set a secret of your own, the same on the ideas and notifications services.",
    )
    event_source: str = Field(
        default="", description="CloudEvents `source` of the facts this service publishes."
    )

    def consumer_group(self) -> str:
        return self.kafka_group_id or f"centricity-{self.service_name}"

    def database_name(self) -> str:
        return self.mongo_database or f"centricity_{self.service_name}"

    def fact_source(self) -> str:
        return self.event_source or f"/centricity/{self.service_name}"
