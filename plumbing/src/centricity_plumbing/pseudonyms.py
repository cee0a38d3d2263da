"""Stable pseudonyms: how a customer appears to people who may not see who they are.

The same customer always gets the same pseudonym (so a thread of comments or votes still reads
as one person's), and it cannot be turned back into the id without the secret.
"""

from __future__ import annotations

import hashlib
import hmac

from centricity_contracts.customers import Customer


def pseudonym(secret: str, businessunit: str, customer_id: str) -> str:
    digest = hmac.new(secret.encode(), f"{businessunit}\x00{customer_id}".encode(), hashlib.sha256)
    return f"anon-{digest.hexdigest()[:16]}"


def pseudonymous(secret: str, businessunit: str, customer: Customer) -> Customer:
    """The customer with a pseudonym for id and no display name; their type stays (it is counted)."""
    return Customer(
        customer_id=pseudonym(secret, businessunit, customer.customer_id),
        customer_type=customer.customer_type,
    )
