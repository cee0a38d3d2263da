"""The CloudEvents 1.0 envelope (structured JSON mode) shared by every Centricity event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

DataT = TypeVar("DataT", bound=BaseModel)

BusinessUnitId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"),
    Field(
        description="Identifier of a configured business unit (lowercase letters, digits, dashes).",
        examples=["retail"],
    ),
]

EVENT_TYPE_PATTERN = r"^centricity\.[a-z][a-z_]*\.[a-z][a-z_]*\.v[0-9]+$"


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event in structured JSON mode.

    `source` + `id` identify an event uniquely: consumers treat a repeated pair as a duplicate.
    Unknown extension attributes are kept, as the CloudEvents spec asks of intermediaries.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = Field(description="CloudEvents specification version.")
    id: str = Field(min_length=1, max_length=256, description="Unique per `source`.")
    source: str = Field(
        min_length=1,
        max_length=512,
        description="URI-reference of the system that produced the event.",
        examples=["/bu/retail/crm"],
    )
    type: str = Field(description="Event type: centricity.<entity>.<past-tense verb>.v<major>.")
    time: AwareDatetime | None = Field(default=None, description="When the occurrence happened.")
    subject: str | None = Field(default=None, max_length=256, description="What the event is about.")
    datacontenttype: Literal["application/json"] = "application/json"
    businessunit: BusinessUnitId = Field(
        description="Extension attribute: the business unit the event belongs to."
    )
    data: DataT

    topic: ClassVar[str]

    @classmethod
    def event_type(cls) -> str:
        """The literal `type` value this event class accepts."""
        (value,) = get_args(cls.model_fields["type"].annotation)
        return str(value)

    @classmethod
    def build(
        cls,
        *,
        id: str,
        source: str,
        businessunit: str | None,
        data: DataT,
        subject: str | None = None,
        time: datetime | None = None,
    ) -> Self:
        """Create an event of this class's type, stamped now unless a time is given."""
        return cls(
            specversion="1.0",
            id=id,
            source=source,
            type=cls.event_type(),
            time=time or datetime.now(UTC),
            subject=subject,
            businessunit=businessunit,
            data=data,
        )

    def dedup_key(self) -> str:
        """The CloudEvents identity of this event: `source` and `id` together."""
        return f"{self.source} {self.id}"

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    def extensions(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
