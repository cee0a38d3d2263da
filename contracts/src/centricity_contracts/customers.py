"""Who takes part: the customers of a business unit."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from centricity_contracts.model import ContractModel


class CustomerType(StrEnum):
    INTERNAL = "internal"
    EXTERNAL = "external"
    PARTNER = "partner"


class Customer(ContractModel):
    """A customer as the business unit knows them; ids are scoped to that business unit."""

    customer_id: str = Field(min_length=1, max_length=128, examples=["c-1042"])
    customer_type: CustomerType = Field(examples=["external"])
    display_name: str | None = Field(default=None, max_length=120, examples=["Ada Lovelace"])

    def key(self, businessunit: str) -> str:
        """Identifies the customer across Centricity: customer ids are scoped to their unit."""
        return f"{businessunit}:{self.customer_id}"


class Actor(ContractModel):
    """A member of a business unit's staff acting on an idea."""

    actor_id: str = Field(min_length=1, max_length=128, examples=["pm-anna"])
    display_name: str | None = Field(default=None, max_length=120, examples=["Anna, product manager"])
