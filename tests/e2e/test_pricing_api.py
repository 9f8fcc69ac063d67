"""Regional price strategies through the API: HQ publishes versions, a manager floats a region
within the band, HQ overrides a province in an emergency, and quotes name what priced them.
Bad input is 422 naming the field and records nothing; refusals are 403, 409 and 410."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Api, assert_error
from tests.unit.test_pricing import DINGXI, HANGZHOU, LANZHOU, definition

MAY = "2026-05-01T00:00:00Z"
JUNE = "2026-06-01T00:00:00Z"


def _publish(api: Api, version: int, **changes: object) -> None:
    r = api.admin.put(
        "/v1/pricing/strategies/default",
        {"definition": definition(**changes), "effective_from": MAY if version == 0 else JUNE,
         "expected_version": version},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["strategy_version"] == version + 1


def _quote(api: Api, region: str, at: str, *lines: dict[str, object]) -> dict[str, object]:
    r = api.as_staff("zhang.wei").post(
        "/v1/quotes", {"strategy": "default", "region": region, "at": at, "lines": list(lines)}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_basket_is_priced_line_by_line_by_the_version_in_force(api: Api) -> None:
    _publish(api, 0)
    _publish(api, 1, products={"LOCK-S1": 219_900, "LOCK-X2": 299_900, "BATTERY": 9_900})

    may = _quote(
        api, DINGXI, "2026-05-01T08:00:00Z",
        {"sku": "LOCK-X2", "quantity": 2, "trade_in": 1}, {"sku": "BATTERY", "quantity": 3},
    )  # fmt: skip
    june = _quote(api, HANGZHOU, "2026-06-02T08:00:00Z", {"sku": "LOCK-S1"})

    assert (may["strategy_version"], may["tier"]) == (1, "county")
    x2, battery = may["lines"]  # type: ignore[misc]
    assert x2["unit_price"] == 269_910 and x2["trade_in_subsidy"] == 30_000
    assert battery["unit_price"] == 4_455  # county 8,910, flash sale half off
    assert may["threshold"]["promotion_id"] == "may-800-off-5000"  # type: ignore[index]
    assert may["total"] == sum(line["total"] for line in may["lines"])  # type: ignore[union-attr]
    assert (june["strategy_version"], june["total"]) == (2, 219_900)

    shown = api.admin.get(
        "/v1/pricing/strategies/default", params={"as_of": "2026-05-15T00:00:00Z"}
    )
    assert shown.status_code == 200
    assert (shown.json()["in_force"], shown.json()["version"]) == (1, 2)


def test_floats_and_overrides_change_prices_from_their_time_on(api: Api) -> None:
    _publish(api, 0)
    manager = api.as_manager("east")
    r = manager.put(
        f"/v1/pricing/strategies/default/regions/{HANGZHOU}/float",
        {"float": "-0.03", "effective_from": "2026-05-10T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    assert _quote(api, HANGZHOU, "2026-05-11T00:00:00Z", {"sku": "LOCK-S1"})["total"] == 193_903

    now = datetime.now(UTC)
    r = api.admin.post(
        "/v1/pricing/strategies/default/overrides",
        {"override_id": "gansu-quake", "scope": "620000", "factor": "0.8",
         "reason": "earthquake relief", "expires_at": (now + timedelta(days=7)).isoformat()},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    soon = (now + timedelta(minutes=1)).isoformat()
    quoted = _quote(api, LANZHOU, soon, {"sku": "LOCK-S1"})
    assert quoted["total"] == 151_924
    assert quoted["override"]["override_id"] == "gansu-quake"  # type: ignore[index]

    r = api.admin.post(
        "/v1/pricing/strategies/default/overrides/gansu-quake/lift", {"reason": "over"}
    )
    assert r.status_code == 200, r.text
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert _quote(api, LANZHOU, later, {"sku": "LOCK-S1"})["override"] is None
    assert_error(
        api.admin.post(
            "/v1/pricing/strategies/default/overrides/gansu-quake/lift", {"reason": "again"}
        ),
        410,
        "override_ended",
    )


def test_bad_requests_are_refused_and_record_nothing(api: Api) -> None:
    _publish(api, 0)
    staff, manager = api.as_staff("zhang.wei"), api.as_manager("east")
    with api.records_nothing():
        bad = definition(promotions=[{"id": "x", "kind": "percent_off", "rate": "1.5"}])
        assert_error(
            api.admin.put("/v1/pricing/strategies/default", {"definition": bad}),
            422, "invalid_input", "promotions[0].rate",
        )  # fmt: skip
        assert_error(
            api.admin.put(
                "/v1/pricing/strategies/default",
                {"definition": definition(), "expected_version": 0},
            ),
            409, "stale_version",
        )  # fmt: skip
        assert_error(
            manager.put("/v1/pricing/strategies/default", {"definition": definition()}),
            403, "forbidden",
        )  # fmt: skip
        assert_error(
            manager.put(
                f"/v1/pricing/strategies/default/regions/{HANGZHOU}/float", {"float": "-0.2"}
            ),
            422, "invalid_input", "float",
        )  # fmt: skip
        assert_error(
            staff.put(f"/v1/pricing/strategies/default/regions/{HANGZHOU}/float", {"float": "0"}),
            403, "forbidden",
        )  # fmt: skip
        assert_error(
            staff.post(
                "/v1/quotes",
                {"strategy": "default", "region": HANGZHOU, "lines": [{"sku": "NOPE"}]},
            ),
            422, "invalid_input", "lines[0].sku",
        )  # fmt: skip
        assert_error(
            staff.post(
                "/v1/quotes",
                {"strategy": "default", "region": HANGZHOU, "at": "2026-04-01T00:00:00Z",
                 "lines": [{"sku": "LOCK-S1"}]},
            ),
            409, "no_strategy_in_force",
        )  # fmt: skip
        assert_error(
            staff.post(
                "/v1/quotes",
                {"strategy": "default", "region": "3301", "lines": [{"sku": "LOCK-S1"}]},
            ),
            422, "invalid_input",
        )  # fmt: skip
        assert_error(
            api.as_role("regulator").post(
                "/v1/quotes",
                {"strategy": "default", "region": HANGZHOU, "lines": [{"sku": "LOCK-S1"}]},
            ),
            403, "forbidden",
        )  # fmt: skip
        assert_error(
            api.admin.post(
                "/v1/pricing/strategies/default/overrides",
                {"override_id": "long", "scope": "620000", "factor": "0.8", "reason": "r",
                 "expires_at": "2027-12-01T00:00:00Z"},
            ),
            422, "invalid_input", "expires_at",
        )  # fmt: skip
