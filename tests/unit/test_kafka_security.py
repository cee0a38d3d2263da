"""Kafka client security settings map onto what aiokafka is given, and default to PLAINTEXT."""

from __future__ import annotations

import ssl

import pytest
from faststream.kafka.security import parse_security

from centricity_plumbing.broker import kafka_security
from centricity_plumbing.settings import ServiceSettings


def settings(**env: str) -> ServiceSettings:
    return ServiceSettings(service_name="ideas", **env)  # type: ignore[arg-type]


def test_the_default_is_plaintext_without_credentials() -> None:
    assert kafka_security(settings()) is None
    assert parse_security(kafka_security(settings())) == {}


def test_scram_over_tls_as_a_strimzi_kafka_user() -> None:
    security = kafka_security(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="centricity-ideas",
            kafka_sasl_password="s3cret",
        )
    )
    client = parse_security(security)
    assert client["security_protocol"] == "SASL_SSL"
    assert client["sasl_mechanism"] == "SCRAM-SHA-512"
    assert client["sasl_plain_username"] == "centricity-ideas"
    assert client["sasl_plain_password"] == "s3cret"
    assert isinstance(client["ssl_context"], ssl.SSLContext)
    assert client["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_without_tls_and_another_mechanism() -> None:
    client = parse_security(
        kafka_security(
            settings(
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_mechanism="SCRAM-SHA-256",
                kafka_sasl_username="u",
                kafka_sasl_password="p",
            )
        )
    )
    assert client["security_protocol"] == "SASL_PLAINTEXT"
    assert client["sasl_mechanism"] == "SCRAM-SHA-256"
    assert client["ssl_context"] is None


def test_tls_only_and_a_missing_ca_file_fails_loudly() -> None:
    assert (
        parse_security(kafka_security(settings(kafka_security_protocol="SSL")))["security_protocol"] == "SSL"
    )
    with pytest.raises(FileNotFoundError):
        kafka_security(settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/nonexistent/ca.crt"))


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        settings(kafka_security_protocol="SASL_MAGIC")
