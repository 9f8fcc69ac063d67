"""The `scrm` command, run as a child process on the embedded default and on PostgreSQL."""

from __future__ import annotations

from infra.bootstrap import bootstrap
from infra.settings import Settings
from projections import all_projections
from tests.integration.support import scrm


def table_dump(settings: Settings) -> dict[str, list[tuple[str, ...]]]:
    c = bootstrap(settings)
    try:
        out = {}
        for projection in c.engine.projections.values():
            for table in projection.tables:
                rows = c.read_db.query(f"SELECT * FROM {table}")
                out[table] = sorted(tuple(str(v) for v in r) for r in rows)
        return out
    finally:
        c.close()


def test_token_create_prints_a_token_the_api_accepts_on_its_last_line(settings: Settings) -> None:
    # A real child process: the `scrm` entry point itself (the rest of the suite runs the
    # same commands in-process, see support.py).
    result = scrm(
        settings, "token", "create", "--role", "staff", "--staff", "zhang.wei", child=True
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    c = bootstrap(settings)
    claims = c.tokens.verify(token)
    c.close()
    assert (claims.role, claims.staff_id) == ("staff", "zhang.wei")


def test_token_create_refuses_a_staff_token_without_a_staff_id(settings: Settings) -> None:
    result = scrm(settings, "token", "create", "--role", "staff")
    assert result.returncode == 2
    assert "staff" in result.stderr


def test_demo_loads_once_and_prints_an_admin_token_and_examples(settings: Settings) -> None:
    first = scrm(settings, "demo", "--no-serve", child=True)
    assert first.returncode == 0, first.stderr
    assert "Loaded demo data" in first.stdout and "export TOKEN=" in first.stdout
    assert "curl" in first.stdout
    second = scrm(settings, "demo", "--no-serve")
    assert "already present" in second.stdout
    c = bootstrap(settings)
    head = c.head()
    rows = c.read_db.query("SELECT count(*) FROM portrait_customers")
    c.close()
    assert head > 50
    assert int(rows[0][0]) == 10 + 12 + 1  # spring scans, capped live scans, the VIP


def test_rebuild_replays_every_read_model_to_what_the_live_one_showed(settings: Settings) -> None:
    assert scrm(settings, "demo", "--no-serve").returncode == 0
    live = table_dump(settings)
    result = scrm(settings, "rebuild")
    assert result.returncode == 0, result.stderr
    every = ", ".join(p.name for p in all_projections())
    assert f"rebuilt {every}" in result.stdout
    assert table_dump(settings) == live
    one = scrm(settings, "rebuild", "portrait")
    assert one.returncode == 0 and table_dump(settings) == live


def test_rebuild_of_an_unknown_read_model_names_the_known_ones(settings: Settings) -> None:
    result = scrm(settings, "rebuild", "nonsense")
    assert result.returncode == 2
    assert "unknown read model 'nonsense'" in result.stderr and "portrait" in result.stderr


def test_relay_and_project_explain_that_they_need_a_bus(settings: Settings) -> None:
    for command in ("relay", "project"):
        result = scrm(settings, command)
        assert result.returncode == 2
        assert "SCRM_NATS_URL" in result.stderr


def test_serve_with_several_workers_needs_server_mode(settings: Settings) -> None:
    """The embedded default keeps its read models current inside its one API process;
    several workers share the port only in server mode (`scrm bench` runs two there)."""
    result = scrm(settings, "serve", "--workers", "2")
    assert result.returncode == 2
    assert "SCRM_NATS_URL" in result.stderr


def test_archive_ingest_archives_a_file_once_in_batches(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import orjson

    lines = [
        {
            "seq": n,
            "msgid": f"cli-{n}",
            "action": "send",
            "from": "zhang.wei",
            "tolist": ["wmCliCustomer01"],
            "roomid": "",
            "msgtime": 1_767_000_000_000 + n,
            "msgtype": "text",
            "text": {"content": f"第{n}条"},
        }
        for n in range(1, 8)
    ]
    feed = tmp_path / "msgaudit.jsonl"
    feed.write_bytes(b"\n".join(orjson.dumps(r) for r in lines))
    first = scrm(settings, "archive", "ingest", str(feed), "--batch", "3")
    assert first.returncode == 0, first.stderr
    assert "archived 7, duplicates 0" in first.stdout and "last seq 7" in first.stdout
    again = scrm(settings, "archive", "ingest", str(feed))
    assert "archived 0, duplicates 7" in again.stdout


def test_archive_ingest_names_the_bad_record(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "bad.jsonl"
    feed.write_text('{"msgid": "b1", "action": "send"}\n')
    result = scrm(settings, "archive", "ingest", str(feed))
    assert result.returncode == 2 and "records[0].tolist" in result.stderr
