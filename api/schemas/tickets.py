"""Request shapes of the tickets context. Definitions, templates, rules and forms are JSON the
domain validates itself, so its errors can name the exact path inside them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from api.schemas.customers import Strict


class WorkflowRevision(Strict):
    definition: dict[str, Any]
    reason: str = Field(min_length=1, max_length=500)
    expected_version: int | None = Field(default=None, ge=1)


class TemplateChange(Strict):
    template: dict[str, Any]
    expected_version: int | None = Field(default=None, ge=0)


class TemplateRetirement(Strict):
    reason: str = Field(min_length=1, max_length=500)


class RoutingRulesChange(Strict):
    rules: dict[str, Any]
    expected_version: int | None = Field(default=None, ge=0)


class IncomingMessage(Strict):
    message_id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=10_000)
    customer_id: UUID | None = None
    region: str | None = Field(default=None, max_length=80)
    product: str | None = Field(default=None, max_length=200)


class WorkerProfile(Strict):
    regions: list[Any]
    service_types: list[Any]
    skills: list[Any] = Field(default_factory=list)
    capacity: int | None = None


class TicketCreate(Strict):
    workflow: str = Field(min_length=1, max_length=40)
    service_type: str = Field(min_length=1, max_length=64)
    # Required unless the ticket is opened from an order (then the receiver's region).
    region: str | None = Field(default=None, min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=5000)
    customer_id: UUID | None = None
    order_id: UUID | None = None
    conversation_msgid: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=200)
    urgency: str = "normal"
    skill: str | None = Field(default=None, max_length=64)
    assignee: str | None = Field(default=None, max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=200)


class TransitionRequest(Strict):
    transition: str = Field(min_length=1, max_length=40)
    form: dict[str, Any] = Field(default_factory=dict)
    confirmation_code: str | None = Field(default=None, max_length=20)
    expected_version: int | None = Field(default=None, ge=1)


class AssignmentChange(Strict):
    staff_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)
    expected_version: int | None = Field(default=None, ge=1)


class CommentCreate(Strict):
    text: str = Field(min_length=1, max_length=5000)


class RatingCreate(Strict):
    score: int
    comment: str | None = Field(default=None, max_length=2000)
