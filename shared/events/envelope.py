from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STREAM_PREFIX = "dncity:events:"
DEAD_LETTER_PREFIX = "dncity:dead:"


def stream_for(service: str) -> str:
    """Each producing service publishes to its own stream; consumers subscribe to the ones they need."""
    return STREAM_PREFIX + service


def dead_letter_stream(group: str) -> str:
    return DEAD_LETTER_PREFIX + group


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope (JSON format) with the distributed-tracing extension."""

    model_config = ConfigDict(populate_by_name=True)

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = None
    requestid: str | None = None

    def to_fields(self) -> dict[str, str]:
        return {"event": self.model_dump_json(exclude_none=True)}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> CloudEvent:
        return cls.model_validate(json.loads(fields[b"event"]))
