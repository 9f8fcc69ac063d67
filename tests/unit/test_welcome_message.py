"""The welcome message (欢迎语) of a channel code, sent with the WelcomeCode of a WeCom add:
once, fresh, and on record either way."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from domain.customers.aggregates import ChannelCode, wecom_state
from domain.customers.application import CustomersApp
from domain.customers.wecom import ContactChange
from domain.inbox import InboxOutcome
from domain.shared import Meta
from infra.bootstrap import Container
from infra.wecom.welcome import RecordingWelcomeSender
from tests.factories import meta
from tests.unit.world import T0, hire, names_in_log, print_code


@pytest.fixture
def sender(app: CustomersApp) -> RecordingWelcomeSender:
    assert isinstance(app.welcome_sender, RecordingWelcomeSender)  # the composition root's
    return app.welcome_sender


@pytest.fixture
def code(app: CustomersApp) -> UUID:
    hire(app, "zhang.wei")
    return print_code(app, ["zhang.wei"])  # welcome message "欢迎"


def wecom_at(seconds: int) -> Meta:
    return meta(actor="integration:wecom", source="wecom", at=T0 + timedelta(seconds=seconds))


def add(
    app: CustomersApp,
    code: UUID | None,
    *,
    at: int = 0,
    received: int = 1,
    change_type: str = "add_external_contact",
    welcome_code: str | None = "WELCOME-1",
    digest: str | None = None,
) -> InboxOutcome:
    """A WeCom add made at T0 + `at` seconds, received at T0 + `received` seconds."""
    change = ContactChange(
        change_type=change_type,
        staff_id="zhang.wei",
        external_userid="wmWelcome01",
        digest=digest or f"{change_type}:{at}:{welcome_code}",
        received_at=T0 + timedelta(seconds=received),
        state=wecom_state(code) if code else None,
        welcome_code=welcome_code,
    )
    return app.apply_contact_change(change, wecom_at(at))


def welcomes(container: Container) -> list[tuple[str, dict[str, object]]]:
    return [(r.name, r.data) for r in container.read_log(0, 1000) if "Welcome" in r.name]


def test_an_add_through_a_code_with_a_welcome_sends_it_and_records_it(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    outcome = add(app, code)

    assert sender.sent == [("WELCOME-1", "欢迎")]
    assert welcomes(container) == [
        (
            "CustomerWelcomeMessageSent",
            {"staff_id": "zhang.wei", "channel_code": str(code)},
        )
    ]
    assert outcome.position == container.head()  # the answer covers the welcome too
    sent = container.read_log(0, 1000)[-1]
    assert sent.occurred_at.startswith("2025-03-01T09:00:01")  # when we received the add


def test_the_same_callback_twice_sends_the_welcome_once(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    add(app, code)
    head = container.head()

    assert add(app, code).outcome == "duplicate"
    assert sender.sent == [("WELCOME-1", "欢迎")]
    assert container.head() == head


def test_a_welcome_code_20_seconds_old_is_not_used_and_that_is_recorded(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    add(app, code, at=0, received=20)

    assert sender.sent == []
    assert welcomes(container) == [
        (
            "CustomerWelcomeMessageFailed",
            {"staff_id": "zhang.wei", "channel_code": str(code), "reason": "welcome_code_expired"},
        )
    ]


def test_a_stale_add_sends_no_welcome(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    removed = ContactChange(
        change_type="del_follow_user",
        staff_id="zhang.wei",
        external_userid="wmWelcome01",
        digest="removed",
        received_at=T0 + timedelta(seconds=5),
    )
    app.apply_contact_change(removed, wecom_at(5))

    assert add(app, code, at=4, received=6).outcome == "stale"
    assert sender.sent == []
    assert [data["reason"] for _, data in welcomes(container)] == ["contact_change_stale"]


def test_a_refusal_by_wecom_is_recorded_with_its_reason(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    sender.fail_with = "errcode 41051: welcome_code invalid"

    add(app, code)

    assert [(n, d["reason"]) for n, d in welcomes(container)] == [
        ("CustomerWelcomeMessageFailed", "errcode 41051: welcome_code invalid")
    ]


def test_a_half_add_carries_a_welcome_code_too(
    app: CustomersApp, code: UUID, sender: RecordingWelcomeSender
) -> None:
    add(app, code, change_type="add_half_external_contact")

    assert sender.sent == [("WELCOME-1", "欢迎")]


def test_a_disabled_code_sends_no_welcome(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    app.disable_channel_code(code, reason="campaign over", expected_version=None, meta=meta())

    add(app, code)

    assert sender.sent == []
    assert [d["reason"] for _, d in welcomes(container)] == ["code_disabled"]


def test_without_a_welcome_message_code_or_welcome_code_nothing_is_sent_or_recorded(
    app: CustomersApp, container: Container, code: UUID, sender: RecordingWelcomeSender
) -> None:
    silent = app.create_channel_code(
        name="no welcome",
        staff_pool=["zhang.wei"],
        tags=[],
        welcome_message="",
        expires_at=None,
        max_scans=None,
        meta=meta(at=T0 - timedelta(days=1)),
    )
    add(app, UUID(silent.id), at=0, digest="silent")
    add(app, None, at=1, received=2, digest="no code")
    add(app, code, at=2, received=3, welcome_code=None, digest="no welcome code")

    assert sender.sent == []
    assert welcomes(container) == []
    assert app.load(ChannelCode, code, "code").scans == 1
    assert "CustomerContactAdded" in names_in_log(container)
