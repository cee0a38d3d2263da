"""The people of the local OpenID provider: one development user for each role (`make run`, tests).

Their claims use the default claim names of `ServiceSettings` (`oidc_*_claim`), as an
enterprise's provider would be configured to send them.
"""

from __future__ import annotations

from typing import Any

DEV_OIDC_CLIENT_ID = "centricity"
DEV_OIDC_CLIENT_SECRET = "dev-secret-centricity"


def _staff(sub: str, name: str, roles: list[str], businessunit: str | None = None) -> dict[str, Any]:
    unit = {"centricity_businessunit": businessunit} if businessunit else {}
    return {"sub": sub, "name": name, "email": f"{sub}@staff.example", "centricity_roles": roles, **unit}


def _customer(sub: str, name: str, businessunit: str, customer_type: str) -> dict[str, Any]:
    return {
        "sub": sub,
        "name": name,
        "email": f"{sub}@customer.example",
        "centricity_roles": ["customer"],
        "centricity_businessunit": businessunit,
        "centricity_customer_id": sub,
        "centricity_customer_type": customer_type,
    }


DEV_USERS: list[dict[str, Any]] = [
    _staff("retail-admin", "Rita Retail (admin)", ["admin"], "retail"),
    _staff("retail-moderator", "Mo Retail (moderator)", ["moderator"], "retail"),
    _staff("retail-viewer", "Vic Retail (viewer)", ["viewer"], "retail"),
    _staff("wholesale-moderator", "Wendy Wholesale (moderator)", ["moderator"], "wholesale"),
    _staff("enterprise-admin", "Eve Enterprise (enterprise admin)", ["enterprise_admin"]),
    _staff("analyst", "Ana Lyst (analyst)", ["analyst"]),
    _customer("alice", "Alice (retail customer)", "retail", "external"),
    _customer("bob", "Bob (wholesale customer)", "wholesale", "external"),
    _customer("erin", "Erin (employee)", "retail", "internal"),
]
