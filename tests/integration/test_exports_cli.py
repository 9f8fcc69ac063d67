"""Archive exports for regulators from the command line, on the embedded default and on
PostgreSQL: verified with the `sha256sum` and `openssl` binaries themselves and with
`scrm archive verify`; every kind of tampering caught; consecutive exports chained; an erased
customer redacted inside an export that still verifies; names as they were at the time."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from domain.scope import Scope
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.e2e.test_archive_api import line
from tests.factories import erase, meta
from tests.integration.support import scrm

FROM, TO = "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"
KEPT_PHONE, ERASED_PHONE, LATER_PHONE = "13800001111", "13900002222", "13700003333"


def _seed(settings: Settings) -> dict[str, str]:
    """Two staff, two customers with phones and WeCom ids, a message each way; a phone
    added to the first customer afterwards."""
    c = bootstrap(settings)
    try:
        for staff_id, name in (("zhang.wei", "张伟"), ("li.na", "李娜")):
            c.customers.register_staff(
                staff_id=staff_id, name=name, department="sales", region="hz", meta=meta()
            )
        ids = {}
        for key, phone, ext in (
            ("kept", KEPT_PHONE, "wmKept0001"),
            ("gone", ERASED_PHONE, "wmGone0001"),
        ):
            ids[key] = c.customers.add_customer(
                identities=[("phone", phone), ("wecom_external_userid", ext)],
                tags=[],
                owner="zhang.wei",
                meta=meta(),
            ).id
        c.conversations.ingest(
            [
                line("m-1", 1, "wmKept0001", ["zhang.wei"], "合同寄到文三路100号"),
                line("m-2", 2, "li.na", ["wmGone0001"], "您的地址是西湖区某某路"),
            ],
            meta(source="msgaudit"),
        )
        c.customers.add_identity(
            UUID(ids["kept"]), kind="phone", value=LATER_PHONE, scope=Scope("admin"), meta=meta()
        )
        return ids
    finally:
        c.close()


def _export(settings: Settings, out: Path, *extra: str) -> dict[str, Any]:
    done = scrm(settings, "archive", "export", "--from", FROM, "--to", TO, *extra, str(out))
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def _events(out: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(raw)
        for seg in sorted((out / "events").iterdir())
        for raw in seg.read_bytes().splitlines()
    ]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def _standard_tools_verify(out: Path) -> tuple[bool, str]:
    """The README's commands, run as a regulator would."""
    sums = _run("sha256sum", "-c", "--strict", "SHA256SUMS", cwd=out)
    ed = _run(
        "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "keys/ed25519.pub", "-rawin",
        "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.ed25519.sig", cwd=out,
    )  # fmt: skip
    p256 = _run(
        "openssl", "dgst", "-sha256", "-verify", "keys/p256.pub",
        "-signature", "SHA256SUMS.p256.sig", "SHA256SUMS", cwd=out,
    )  # fmt: skip
    ok = (
        sums.returncode == 0
        and ed.returncode == 0
        and "Signature Verified Successfully" in ed.stdout
        and p256.returncode == 0
        and "Verified OK" in p256.stdout
    )
    return ok, sums.stdout + sums.stderr + ed.stdout + ed.stderr + p256.stdout + p256.stderr


def _scrm_verify(settings: Settings, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    done = scrm(settings, "archive", "verify", str(out), "--json", *extra)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, orjson.loads(done.stdout)


# The README's check that no file exists beyond those SHA256SUMS lists.
README_EXTRA_FILES = (
    "find . -type f ! -name 'SHA256SUMS*' | sed 's|^./||' | sort > ../present-$$;"
    " cut -c67- SHA256SUMS | sort | diff - ../present-$$"
)

needs_tools = pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("sha256sum")),
    reason="the regulator's tools (openssl, sha256sum) are not installed",
)


@needs_tools
def test_an_export_verifies_with_sha256sum_and_openssl_alone(
    settings: Settings, tmp_path: Path
) -> None:
    ids = _seed(settings)
    out = tmp_path / "export-1"
    made = _export(settings, out)
    ok, said = _standard_tools_verify(out)
    assert ok, said
    code, report = _scrm_verify(settings, out)
    assert code == 0 and report["ok"], report

    # The key is the one the operator publishes: its fingerprint as openssl computes it.
    fingerprint = hashlib.sha256(
        subprocess.run(
            ["openssl", "pkey", "-pubin", "-in", "keys/ed25519.pub", "-outform", "DER"],
            cwd=out,
            capture_output=True,
            check=True,
        ).stdout
    ).hexdigest()
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["keys"]["ed25519"]["fingerprint"] == fingerprint
    assert fingerprint in (out / "README.txt").read_text()
    assert _scrm_verify(settings, out, "--fingerprint", fingerprint)[0] == 0
    assert _scrm_verify(settings, out, "--fingerprint", "0" * 64)[0] == 1

    # Canonical JSON Lines in log order, content in clear, names as at the time.
    events = _events(out)
    assert manifest["counts"]["events"] == made["events"] == len(events)
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    for raw in _first_segment(out).read_bytes().splitlines():
        assert orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS) == raw
    message = next(e for e in events if e["data"].get("msgid") == "m-1")
    assert message["data"]["content"] == {"text": {"content": "合同寄到文三路100号"}}
    kept = f"customer:{ids['kept']}"
    # The phone added later is not among the customer's identities at the message's time.
    assert message["names"][kept] == [f"phone:{KEPT_PHONE}", "wecom_external_userid:wmKept0001"]
    assert message["names"]["staff:zhang.wei"] == "张伟"
    added = next(
        e for e in events if e["event"] == "CustomerAdded" and e["aggregate_id"] == ids["kept"]
    )
    assert {i["value"] for i in added["data"]["identities"]} == {KEPT_PHONE, "wmKept0001"}
    later = next(e for e in events if e["event"] == "CustomerIdentityAdded")
    assert later["data"]["value"] == LATER_PHONE and len(later["names"][kept]) == 3
    # Each line names the stored record's seal.
    assert all(len(e["seal"]) == 64 for e in events)

    # The export is on record, with its digest.
    assert made["digest"] == hashlib.sha256((out / "SHA256SUMS").read_bytes()).hexdigest()
    history = scrm(settings, "audit", "history", made["export_id"])
    produced = orjson.loads(history.stdout)[0]
    assert produced["event"] == "ArchiveExportProduced"
    assert produced["data"]["digest"] == made["digest"]
    assert produced["data"]["requested_by"] == "user:operator"


def _first_segment(out: Path) -> Path:
    return sorted((out / "events").iterdir())[0]


def _tamper_cases(out: Path) -> dict[str, Any]:
    first = _first_segment(out)
    return {
        "a line changed": lambda: first.write_bytes(
            first.read_bytes().replace(b"\xe6\x96\x87\xe4\xb8\x89", b"\xe6\x96\x87\xe5\x9b\x9b", 1)
        ),
        "a line deleted": lambda: first.write_bytes(
            b"\n".join(first.read_bytes().splitlines()[1:]) + b"\n"
        ),
        "a line added": lambda: first.write_bytes(
            first.read_bytes() + first.read_bytes().splitlines()[-1] + b"\n"
        ),
        "lines reordered": lambda: first.write_bytes(
            b"\n".join(
                [*first.read_bytes().splitlines()[:2][::-1], *first.read_bytes().splitlines()[2:]]
            )
            + b"\n"
        ),
        "a file deleted": lambda: (out / "README.txt").unlink(),
        "a file added": lambda: (out / "events/999999999999.jsonl").write_bytes(b"{}\n"),
        "the manifest edited": lambda: (out / "manifest.json").write_bytes(
            (out / "manifest.json").read_bytes().replace(b'"number": 1', b'"number": 7')
        ),
    }


@needs_tools
def test_every_change_to_an_export_is_detected(settings: Settings, tmp_path: Path) -> None:
    _seed(settings)
    pristine = tmp_path / "pristine"
    _export(settings, pristine)
    for name in _tamper_cases(pristine):
        out = tmp_path / name.replace(" ", "-")
        shutil.copytree(pristine, out)
        _tamper_cases(out)[name]()
        ok, _ = _standard_tools_verify(out)
        extra = _run("sh", "-c", README_EXTRA_FILES, cwd=out)
        assert not ok or extra.returncode != 0, f"{name}: the standard tools missed it"
        code, report = _scrm_verify(settings, out)
        assert code == 1 and not report["ok"], f"{name}: scrm archive verify missed it"

        # A forger who also rewrites SHA256SUMS is stopped by the signatures.
        if name.startswith(("a line", "lines")):
            sums = subprocess.run(
                ["sh", "-c", "sha256sum $(cut -c67- SHA256SUMS)"],
                cwd=out,
                capture_output=True,
                check=True,
            ).stdout
            (out / "SHA256SUMS").write_bytes(sums)
            assert not _standard_tools_verify(out)[0], name
            assert _scrm_verify(settings, out)[0] == 1, name


def test_consecutive_exports_chain(settings: Settings, tmp_path: Path) -> None:
    _seed(settings)
    first, second = tmp_path / "one", tmp_path / "two.tar.gz"
    one = _export(settings, first)
    two = _export(settings, second, "--context", "conversations")
    assert (one["number"], two["number"]) == (1, 2)
    assert one["previous_digest"] is None and two["previous_digest"] == one["digest"]
    assert _scrm_verify(settings, second, "--previous", str(first))[0] == 0
    # Against an export it does not follow, the chain is broken.
    other = tmp_path / "other"
    _export(settings, other)
    code, report = _scrm_verify(settings, second, "--previous", str(other))
    assert code == 1 and "does not follow" in report["findings"][0]
    # Only conversations, as asked.
    assert {e["context"] for e in _events_of_tarball(second, tmp_path)} == {"conversations"}


def _events_of_tarball(path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    import tarfile

    target = tmp_path / "unpacked"
    with tarfile.open(path) as tar:
        tar.extractall(target, filter="data")
    (inner,) = list(target.iterdir())
    return _events(inner)


@needs_tools
def test_an_erased_customer_is_redacted_and_the_export_still_verifies(
    settings: Settings, tmp_path: Path
) -> None:
    ids = _seed(settings)
    erase(settings, ids["gone"])
    out = tmp_path / "export"
    _export(settings, out)
    assert _standard_tools_verify(out)[0]
    assert _scrm_verify(settings, out)[0] == 0
    text = b"".join(p.read_bytes() for p in (out / "events").iterdir()).decode()
    assert ERASED_PHONE not in text and "wmGone0001" not in text
    assert "西湖区" not in text  # their message
    events = _events(out)
    theirs = [e for e in events if e["aggregate_id"] == ids["gone"]]
    assert theirs and all(e["erased"] for e in theirs)
    added = next(e for e in theirs if e["event"] == "CustomerAdded")
    assert {i["value"] for i in added["data"]["identities"]} == {"[erased]"}
    message = next(e for e in events if e["data"].get("msgid") == "m-2")
    assert message["erased"] and message["data"]["sealed"] == "[erased]"
    assert message["names"][f"customer:{ids['gone']}"] == ["[erased]"]
    # The other customer is in clear.
    assert KEPT_PHONE in text and "文三路" in text
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["erased_customers"] >= 1


def test_bad_requests_are_refused_and_record_nothing(settings: Settings, tmp_path: Path) -> None:
    _seed(settings)
    c = bootstrap(settings)
    head = c.head()
    c.close()
    for args, said in (
        (("--from", "2026-01-01T00:00:00", "--to", TO), "needs a timezone"),
        (("--from", TO, "--to", FROM), "from must be before to"),
        (("--from", FROM, "--to", TO, "--context", "weather"), "unknown context"),
        (("--from", FROM, "--to", TO, "--customer", "not-a-uuid"), "not a customer id"),
    ):
        done = scrm(settings, "archive", "export", *args, str(tmp_path / "x"))
        assert done.returncode == 1 and said in done.stderr, (args, done.stderr)
    existing = tmp_path / "full"
    existing.mkdir()
    (existing / "something").write_text("x")
    done = scrm(settings, "archive", "export", "--from", FROM, "--to", TO, str(existing))
    assert done.returncode == 1 and "not empty" in done.stderr
    c = bootstrap(settings)
    assert c.head() == head
    c.close()
