"""Sign-in for pages: the OpenID Connect authorization code flow (with PKCE), as a confidential
client of the enterprise's provider, keeping the ID token in a signed, HTTP-only session cookie.

Pages and their scripts then call the same service's API with that cookie, and every request is
authenticated from the token again (signature, issuer, audience, expiry): an expired token means
signing in again. Authlib's Starlette client does the protocol work.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from centricity_plumbing.auth import SESSION_TOKEN
from centricity_plumbing.problems import UnauthorisedProblem
from centricity_plumbing.settings import ServiceSettings

SESSION_COOKIE = "centricity_session"
SESSION_MAX_AGE_S = 8 * 3600
NEXT = "next"


class SignInFailed(UnauthorisedProblem):
    title = "Sign-in failed"


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/"
    return target


def install_sessions(app: FastAPI, settings: ServiceSettings) -> None:
    secret = settings.session_secret.get_secret_value() or secrets.token_urlsafe(32)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=settings.oidc_issuer.startswith("https://"),
    )


def signin_router(settings: ServiceSettings) -> APIRouter:
    router = APIRouter(tags=["sign-in"])
    oauth = OAuth()
    if settings.oidc_issuer:
        oauth.register(
            name="provider",
            server_metadata_url=f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
        )

    def provider() -> Any:
        client = oauth.create_client("provider")
        if client is None:
            raise SignInFailed("No OpenID provider is configured (CENTRICITY_OIDC_ISSUER).")
        return client

    @router.get(
        "/signin",
        summary="Sign in with the enterprise's OpenID provider (a page)",
        status_code=302,
        response_class=RedirectResponse,
        responses={302: {"description": "To the provider's sign-in page"}},
    )
    async def signin(request: Request, next_: str | None = Query(None, alias=NEXT, max_length=500)) -> Any:
        request.session[NEXT] = safe_next(next_)
        return await provider().authorize_redirect(request, str(request.url_for("signin_callback")))

    @router.get("/signin/callback", summary="Where the provider sends people back", include_in_schema=False)
    async def signin_callback(request: Request) -> RedirectResponse:
        try:
            token = await provider().authorize_access_token(request)
        except OAuthError as error:
            raise SignInFailed(f"The provider did not sign you in: {error.error}.") from None
        target = safe_next(request.session.pop(NEXT, None))
        request.session.clear()
        request.session[SESSION_TOKEN] = token["id_token"]
        return RedirectResponse(target, status_code=303)

    @router.post(
        "/signout",
        summary="Sign out (ends this site's session)",
        status_code=303,
        response_class=RedirectResponse,
        responses={303: {"description": "Signed out; to the home page"}},
    )
    async def signout(request: Request) -> RedirectResponse:
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    return router
