"""The base of every event payload model, and the rule that keeps input as strict as its schema."""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

STRICT_INPUT_KEY = "strict-input"
# Set while a service reads untrusted input (an HTTP request body); Kafka intake passes the
# validation context {STRICT_INPUT_KEY: True} instead.
strict_input: ContextVar[bool] = ContextVar("strict_input", default=False)


class ContractModel(BaseModel):
    """A payload model.

    Input is as strict as the exported schema, which is closed (`additionalProperties: false`): a
    field it does not know is refused, never silently dropped, whether it comes over HTTP or on an
    intake topic. Readers of facts stay tolerant (unknown fields are ignored), so that adding an
    optional field to a fact stays backward compatible; the compatibility check tells such an
    addition (safe) from a change in meaning of a field old producers may already send (breaking).
    """

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and (strict_input.get() or (info.context or {}).get(STRICT_INPUT_KEY)):
            unknown = sorted(str(key) for key in data.keys() - known_fields(cls))
            if unknown:
                raise PydanticCustomError(
                    "unknown_field",
                    "unknown field {fields}: the schema does not allow it",
                    {"fields": ", ".join(repr(name) for name in unknown)},
                )
        return data


@functools.cache
def known_fields(model: type[BaseModel]) -> frozenset[str]:
    names = set(model.model_fields) | set(model.model_computed_fields)
    names |= {f.alias for f in model.model_fields.values() if f.alias}
    names |= {f.validation_alias for f in model.model_fields.values() if isinstance(f.validation_alias, str)}
    return frozenset(names)


def _not_a_number(value: Any) -> Any:
    # pydantic reads a number as seconds since 1970: `opens_at: 0` would open a campaign in 1970.
    if isinstance(value, int | float):
        raise ValueError("a timestamp is an RFC 3339 string with a time zone, e.g. 2026-11-01T00:00:00Z")
    return value


# A moment in time as input: an RFC 3339 string with its offset, never a bare number.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
