"""How Centricity's ids derive from a business unit's own references: part of the contract, so a
BU's system can name an idea (say, in a ballot) without asking Centricity first."""

from __future__ import annotations

import functools
import uuid

# Fixed forever: ids derive from it, so changing it would fork every idea's identity.
IDEA_NAMESPACE = uuid.UUID("0b4f3c5e-9a57-4f7e-8d3b-6c1e2a9f4d10")
# Joins the parts of a name: a character no unit id or reference contains in practice.
SEPARATOR = "\x1f"


@functools.lru_cache(maxsize=4096)
def idea_id_for(businessunit: str, reference: str) -> str:
    """An idea's id: UUID version 5 in IDEA_NAMESPACE of `<businessunit>\\x1f<reference>`.

    Deriving it makes a resubmission land on the same document, so it cannot create a twin.
    """
    return str(uuid.uuid5(IDEA_NAMESPACE, f"{businessunit}{SEPARATOR}{reference}"))


def campaign_id_for(businessunit: str, reference: str) -> str:
    """A campaign's id: UUID version 5 in IDEA_NAMESPACE of `campaign\\x1f<businessunit>\\x1f<reference>`."""
    return str(uuid.uuid5(IDEA_NAMESPACE, f"campaign{SEPARATOR}{businessunit}{SEPARATOR}{reference}"))


IDS_DOC = f"""## Ids

An idea's id derives from the business unit and its own reference, so a unit's system can name
an idea in a ballot without asking Centricity: it is the UUID version 5 (RFC 9562) in the namespace
`{IDEA_NAMESPACE}` of the name `<businessunit>` + `U+001F` + `<reference>` (UTF-8). A campaign's
id is the same with the name `campaign` + `U+001F` + `<businessunit>` + `U+001F` + `<reference>`.

For example, in Python: `uuid.uuid5(uuid.UUID("{IDEA_NAMESPACE}"), "retail\\x1fCRM-2291")` is
`{idea_id_for("retail", "CRM-2291")}`.
"""
