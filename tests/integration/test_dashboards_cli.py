"""`scrm dashboards ...` on the embedded default and on PostgreSQL: a scan that became a buyer
shows in the funnel, the regions and the staff ranking, each stating its position; a bad
window is refused naming the option."""

from __future__ import annotations

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.integration.support import head, scrm
from tests.unit.test_dashboards import WINDOW, a_month_of_business


def test_the_dashboards_from_the_command_line(settings: Settings) -> None:
    c = bootstrap(settings)
    try:
        seen = a_month_of_business(c)
    finally:
        c.close()
    window = ("--from", WINDOW[0], "--to", WINDOW[1])

    done = scrm(settings, "dashboards", "funnel", "--by", "code", *window)
    assert done.returncode == 0, done.stderr
    funnel = orjson.loads(done.stdout)
    assert funnel["as_of"]["position"] == head(settings)
    assert [(i["code_id"], i["gmv"]) for i in funnel["items"]] == [(seen["code"], 130_000)]
    regions = orjson.loads(scrm(settings, "dashboards", "regions", *window).stdout)
    assert regions["items"][0]["province"] == "浙江省"
    ranking = orjson.loads(
        scrm(settings, "dashboards", "staff", "--order-by", "response", *window).stdout
    )
    assert ranking["items"][0]["average_response_seconds"] == 120
    coupons = orjson.loads(scrm(settings, "dashboards", "coupons", *window).stdout)
    assert {i["issuer"] for i in coupons["items"]} == {"campaign", "staff"}

    bad = scrm(settings, "dashboards", "funnel", "--from", "2026-03-01", "--to", "2026-02-01")
    assert bad.returncode == 1 and "from must be before to" in bad.stderr
