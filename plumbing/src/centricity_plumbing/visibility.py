"""What a reader may see of the people behind ideas, votes and comments.

Every service answers reads for a `Viewer`: the authenticated principal, and the secret that
turns customers it may not identify into stable pseudonyms. The rules:
- staff, and a unit's system, see who their own unit's customers are; enterprise admins see all;
- a customer sees themselves by name, everyone else under a pseudonym;
- analysts and other units see pseudonyms;
- internal-only ideas are seen by staff, systems and internal customers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from centricity_contracts.customers import Customer, CustomerType
from centricity_plumbing.auth import AuthenticatedPrincipal, Principal, PrincipalKind
from centricity_plumbing.permissions import Action, is_themselves, permitted, sees_customers_of
from centricity_plumbing.pseudonyms import pseudonymous


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    pseudonym_secret: str

    @property
    def sees_internal_only(self) -> bool:
        if self.principal.kind is not PrincipalKind.CUSTOMER:
            return True
        return self.principal.customer_type == CustomerType.INTERNAL

    def identifies(self, businessunit: str, customer_id: str) -> bool:
        return sees_customers_of(self.principal, businessunit) or is_themselves(
            self.principal, businessunit, customer_id
        )

    def customer(self, businessunit: str, customer: Customer) -> Customer:
        """The customer as this viewer may see them."""
        if self.identifies(businessunit, customer.customer_id):
            return customer
        return pseudonymous(self.pseudonym_secret, businessunit, customer)


async def current_viewer(request: Request, principal: AuthenticatedPrincipal) -> Viewer:
    return Viewer(principal, request.app.state.settings.pseudonym_secret.get_secret_value())


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


def viewer_for(action: Action) -> Any:
    """A route dependency: the reader, allowed to take `action`, as a `Viewer`."""

    # A default, not `Annotated`: the closure's `action` is not visible when annotations are resolved.
    async def dependency(viewer: CurrentViewer, _: Principal = permitted(action)) -> Viewer:  # noqa: B008
        return viewer

    return Depends(dependency)
