"""Business-unit API keys: a write's business unit comes from its key, never from its body."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from centricity_plumbing.problems import UnauthorisedProblem
from centricity_plumbing.settings import BusinessUnitConfig

API_KEY_HEADER = "X-API-Key"

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The API key of the business unit on whose behalf the request writes.",
)


class InvalidApiKey(UnauthorisedProblem):
    title = "Missing or invalid API key"


def business_unit_for_key(units: dict[str, BusinessUnitConfig], api_key: str | None) -> str | None:
    """The business unit whose key this is; compared in constant time."""
    if not api_key:
        return None
    found = None
    for unit_id, unit in units.items():
        if hmac.compare_digest(unit.api_key.get_secret_value().encode(), api_key.encode()):
            found = unit_id
    return found


async def authenticated_business_unit(
    request: Request, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> str:
    units: dict[str, BusinessUnitConfig] = request.app.state.settings.business_units
    unit = business_unit_for_key(units, api_key)
    if unit is None:
        raise InvalidApiKey(
            f"Send a business unit's API key in the {API_KEY_HEADER} header.",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    return unit


BusinessUnit = Annotated[str, Depends(authenticated_business_unit)]
