"""Who is asking: a business unit's system (API key), or a person signed in with the enterprise's
OpenID Connect provider (a bearer JWT, or the session of a page that signed them in).

Every request resolves to one `Principal`. What a principal may do is `permissions.py`'s
business; this module only establishes who it is, and answers 401 problem+json when it cannot.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import urllib.request
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from centricity_plumbing.problems import UnauthorisedProblem
from centricity_plumbing.settings import BusinessUnitConfig, ServiceSettings

API_KEY_HEADER = "X-API-Key"
SESSION_TOKEN = "id_token"
# Asymmetric algorithms only: `none` and the HMAC family (whose key would be the public key) are
# refused whatever the token's header says.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The API key of the business unit whose system makes the request.",
)
_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from the enterprise's OpenID Connect provider (issuer and audience configured).",
)


class Role(StrEnum):
    ADMIN = "admin"
    MODERATOR = "moderator"
    VIEWER = "viewer"
    ENTERPRISE_ADMIN = "enterprise_admin"
    ANALYST = "analyst"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.ADMIN, Role.MODERATOR, Role.VIEWER})
ENTERPRISE_ROLES = frozenset({Role.ENTERPRISE_ADMIN, Role.ANALYST})


class PrincipalKind(StrEnum):
    SYSTEM = "system"
    STAFF = "staff"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    `businessunit` is the unit a system or a staff member acts for, and a customer's own unit
    (customer ids are unique within a unit). Enterprise-wide staff have none.
    """

    kind: PrincipalKind
    subject: str
    businessunit: str | None = None
    roles: frozenset[Role] = field(default_factory=frozenset)
    customer_id: str | None = None
    customer_type: str | None = None
    name: str | None = None

    @property
    def actor_id(self) -> str:
        """How facts name this principal as the one who acted."""
        return f"{self.kind}:{self.subject}"


class InvalidCredentials(UnauthorisedProblem):
    title = "Missing or invalid credentials"


class InvalidApiKey(InvalidCredentials):
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


class TokenVerifier:
    """Checks a provider's JWTs: signature against its JWKS (cached, refetched for an unknown key
    id, so rotation works), issuer, audience, expiry with leeway, and an asymmetric algorithm."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(
                self.settings.oidc_jwks_url or discover(self.issuer)["jwks_uri"],
                cache_keys=True,
                lifespan=self.settings.oidc_jwks_cache_s,
                timeout=5,
            )
        return self._jwks

    def _signing_key(self, token: str) -> jwt.PyJWK:
        client = self._client()
        if jwt.get_unverified_header(token).get("kid"):
            return client.get_signing_key_from_jwt(token)
        # Some providers (the local one among them) leave `kid` out: then only a single key fits.
        keys = client.get_signing_keys()
        if len(keys) != 1:
            raise jwt.InvalidTokenError("the token names no key, and the provider has several")
        return keys[0]

    def _verify(self, token: str) -> dict[str, Any]:
        key = self._signing_key(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=self.settings.oidc_audience,
            issuer=self.issuer,
            leeway=self.settings.oidc_leeway_s,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        return claims

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's claims, or InvalidCredentials saying what is wrong (never whose it is)."""
        if not self.enabled:
            raise InvalidCredentials("This service accepts no bearer tokens: no OpenID issuer is configured.")
        try:
            # PyJWKClient fetches keys with blocking urllib: off the event loop.
            return await asyncio.to_thread(self._verify, token)
        except (jwt.PyJWKClientError, jwt.InvalidTokenError, OSError) as error:
            raise InvalidCredentials(_what_is_wrong(error), headers=_bearer_challenge()) from None

    def principal(self, claims: dict[str, Any]) -> Principal:
        settings = self.settings
        roles = claims.get(settings.oidc_roles_claim) or []
        known = frozenset(Role(r) for r in (roles if isinstance(roles, list) else [roles]) if r in set(Role))
        unit = claims.get(settings.oidc_businessunit_claim)
        unit = unit if isinstance(unit, str) and unit in settings.business_units else None
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        if Role.CUSTOMER in known:
            customer_id = claims.get(settings.oidc_customer_id_claim) or claims["sub"]
            return Principal(
                kind=PrincipalKind.CUSTOMER,
                subject=str(claims["sub"]),
                businessunit=unit,
                roles=frozenset({Role.CUSTOMER}),
                customer_id=str(customer_id),
                customer_type=str(claims.get(settings.oidc_customer_type_claim) or "external"),
                name=name,
            )
        staff_roles = known & (STAFF_ROLES if unit else frozenset())
        return Principal(
            kind=PrincipalKind.STAFF,
            subject=str(claims["sub"]),
            businessunit=unit,
            roles=staff_roles | (known & ENTERPRISE_ROLES),
            name=name,
        )


def _what_is_wrong(error: Exception) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "The token has expired."
    if isinstance(error, jwt.InvalidAudienceError):
        return "The token is not meant for this service."
    if isinstance(error, jwt.InvalidIssuerError):
        return "The token comes from another issuer."
    return f"The token is not valid ({type(error).__name__})."


def discover(issuer: str) -> dict[str, Any]:
    """The provider's OpenID configuration (blocking: call it off the event loop)."""
    url = f"{issuer}/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=5) as answer:
        document: dict[str, Any] = json.load(answer)
    return document


def _bearer_challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer, ApiKey header="{API_KEY_HEADER}"'}


async def authenticated_principal(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from an API key, a bearer token or a signed-in session, in that order."""
    settings: ServiceSettings = request.app.state.settings
    if API_KEY_HEADER in request.headers and "authorization" in request.headers:
        # Which of two credentials counts must never be a guess: a bad one beside a good one is refused.
        raise InvalidCredentials(
            f"Send one credential: a business unit's API key ({API_KEY_HEADER}) or a bearer token, not both.",
            headers=_challenge(),
        )
    if api_key is not None:
        unit = business_unit_for_key(settings.business_units, api_key)
        if unit is None:
            raise InvalidApiKey("The API key is not valid.", headers=_challenge())
        return Principal(kind=PrincipalKind.SYSTEM, subject=unit, businessunit=unit)
    verifier: TokenVerifier = request.app.state.token_verifier
    token = bearer.credentials if bearer is not None else session_token(request)
    if token is None:
        raise InvalidCredentials(
            f"Sign in, or send a bearer token or a business unit's API key ({API_KEY_HEADER}).",
            headers=_challenge(),
        )
    return verifier.principal(await verifier.claims(token))


def session_token(request: Request) -> str | None:
    session: dict[str, Any] | None = request.scope.get("session")
    token = (session or {}).get(SESSION_TOKEN)
    return token if isinstance(token, str) else None


AuthenticatedPrincipal = Annotated[Principal, Depends(authenticated_principal)]


async def authenticated_business_unit(principal: AuthenticatedPrincipal) -> str:
    """The business unit of a system's API key (routes only systems may call)."""
    if principal.kind is not PrincipalKind.SYSTEM or principal.businessunit is None:
        raise InvalidApiKey(
            f"Send a business unit's API key in the {API_KEY_HEADER} header.",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    return principal.businessunit


BusinessUnit = Annotated[str, Depends(authenticated_business_unit)]
