"""The base of every event payload model."""

from pydantic import BaseModel, ConfigDict


class ContractModel(BaseModel):
    """A payload model.

    Readers are tolerant (unknown fields are ignored at run time), but the exported schema is
    closed, so that the compatibility check can tell an added optional field (safe) from a
    change in meaning of a field that old producers may already send (breaking).
    """

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})
