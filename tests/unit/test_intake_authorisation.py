"""Intake events are bound to their unit by an HMAC made with the unit's API key."""

import pytest

from centricity_plumbing.broker import SIGNATURE_HEADER, RejectedEvent, authorise_intake, intake_signature
from centricity_plumbing.settings import BusinessUnitConfig, ServiceSettings

UNITS = {
    "retail": BusinessUnitConfig(name="Retail", api_key="retail-key"),
    "wholesale": BusinessUnitConfig(name="Wholesale", api_key="wholesale-key"),
}
BODY = b'{"businessunit": "retail"}'


def settings(mode: str) -> ServiceSettings:
    return ServiceSettings(service_name="t", business_units=UNITS, intake_signatures=mode)


def headers(key: str, body: bytes = BODY) -> list[tuple[str, bytes]]:
    return [(SIGNATURE_HEADER, intake_signature(body, key).encode())]


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_an_event_signed_with_its_units_key_is_accepted(mode: str) -> None:
    authorise_intake(settings(mode), "retail", BODY, headers("retail-key"))


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_another_units_key_or_a_changed_body_is_refused(mode: str) -> None:
    with pytest.raises(RejectedEvent, match="does not match business unit 'retail'"):
        authorise_intake(settings(mode), "retail", BODY, headers("wholesale-key"))
    with pytest.raises(RejectedEvent, match="does not match"):
        authorise_intake(settings(mode), "retail", BODY + b" ", headers("retail-key"))


def test_an_unsigned_event_is_refused_only_when_signatures_are_required() -> None:
    authorise_intake(settings("optional"), "retail", BODY, [])
    with pytest.raises(RejectedEvent, match="no centricity-signature header"):
        authorise_intake(settings("required"), "retail", BODY, [])


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(RejectedEvent, match="unknown business unit 'pirates'"):
        authorise_intake(settings("optional"), "pirates", BODY, [])
