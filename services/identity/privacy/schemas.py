from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AccountDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256, json_schema_extra={"writeOnly": True})
