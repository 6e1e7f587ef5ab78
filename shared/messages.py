"""Messages on the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StageName = Literal["sfm", "gs", "nerf"]
STAGES: tuple[StageName, ...] = ("sfm", "gs", "nerf")
TRAINING_STAGES: tuple[StageName, ...] = ("gs", "nerf")


def queue_name(stage: StageName) -> str:
    """The durable queue a stage's requests go to (``stage.sfm``, ...)."""
    return f"stage.{stage}"


class StageRequest(BaseModel):
    """Ask a worker to run one attempt of one stage of one job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    message_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    job_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    stage: StageName
    attempt: int = Field(ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def to_bytes(self) -> bytes:
        """The JSON body published to the broker."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> StageRequest:
        """Parse a message body; raises ``pydantic.ValidationError`` for anything malformed."""
        return cls.model_validate_json(body)
