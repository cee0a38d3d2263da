"""Signed, expiring links in the mail customers get: to answer whether a delivered idea helped
(honoured by the ideas service), and to unsubscribe from an idea (by the notifications service).

Both services hold the same `answer_link_secret`. A link names one customer, one idea and the
notification that carried it, and it is good for its purpose only (its own audience). Opening one
shows a page; only the page's POST acts, because mail scanners open every link in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from centricity_contracts.customers import Customer, CustomerType

ANSWER = "answer"
UNSUBSCRIBE = "unsubscribe"
ALGORITHM = "HS256"


def audience(purpose: str) -> str:
    return f"centricity:{purpose}-link"


class AnswerLinkInvalid(Exception):
    """The link was altered, has expired, or is not an answer link."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AnswerLink:
    link_id: str
    idea_id: str
    businessunit: str
    customer: Customer
    expires_at: datetime
    purpose: str = ANSWER

    def encode(self, secret: str) -> str:
        claims = {
            "aud": audience(self.purpose),
            "jti": self.link_id,
            "idea": self.idea_id,
            "bu": self.businessunit,
            "cid": self.customer.customer_id,
            "ctype": str(self.customer.customer_type),
            "exp": int(self.expires_at.timestamp()),
        }
        return jwt.encode(claims, secret, algorithm=ALGORITHM)

    @classmethod
    def decode(cls, token: str, secret: str, purpose: str = ANSWER) -> AnswerLink:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=audience(purpose),
                options={"require": ["exp", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise AnswerLinkInvalid("This link has expired.") from error
        except jwt.PyJWTError as error:
            raise AnswerLinkInvalid("This is not a valid answer link.") from error
        try:
            customer = Customer(customer_id=claims["cid"], customer_type=CustomerType(claims["ctype"]))
            return cls(
                link_id=str(claims["jti"]),
                idea_id=str(claims["idea"]),
                businessunit=str(claims["bu"]),
                customer=customer,
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                purpose=purpose,
            )
        except (KeyError, ValueError) as error:
            raise AnswerLinkInvalid("This is not a valid answer link.") from error
