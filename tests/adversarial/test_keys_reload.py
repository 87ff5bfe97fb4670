"""The keys file while serving, over real HTTP (uvicorn on 127.0.0.1): content-hash reload,
a deleted file revokes every key, an invalid one keeps the last good keys and turns /readyz 503,
expired keys get 401 saying so.

``GET /v1/admin/jobs/none`` needs no store content: 404 for a valid admin key, 401 for a key
the server does not accept.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.auth import ApiKey, format_entry, hash_key
from service.runtime import Models
from tests.service.conftest import (  # noqa: F401 (sample_store_template: a fixture)
    Running,
    loader_of,
    make_settings,
    running_server,
    sample_store_template,
)

JOB = "/v1/admin/jobs/none"


def entry(name: str, *, expires: str | None = None) -> str:
    text = format_entry(
        ApiKey(id=name, sha256=hash_key(f"key-{name}"), tenant="acme", groups=(), admin=True)
    )
    return text + (f"expires = {expires}\n" if expires else "")


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory,
    encoders: Any,
    sample_store_template: Path,  # noqa: F811 (the imported fixture, by name)
) -> Iterator[Running]:
    models = Models(encoders=encoders, reranker=None)
    work = tmp_path_factory.mktemp("keys-reload")
    (work / "keys.toml").write_text(entry("aaaa"), "utf-8")
    shutil.copytree(sample_store_template, work / "qdrant")
    with running_server(
        lambda port: make_settings(work / "qdrant", work, port=port), loader_of(models)
    ) as run:
        yield run


def test_a_same_size_same_mtime_edit_is_picked_up(srv: Running) -> None:
    keys = srv.settings.keys_file
    st = os.stat(keys)
    with srv.client() as c:
        assert c.get(JOB, headers=bearer("aaaa")).status_code == 404
        # same length, same mtime: only the content tells the change
        keys.write_text(entry("bbbb"), "utf-8")
        os.utime(keys, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(keys).st_size == st.st_size
        assert c.get(JOB, headers=bearer("aaaa")).status_code == 401
        assert c.get(JOB, headers=bearer("bbbb")).status_code == 404


def test_a_deleted_keys_file_revokes_every_key(srv: Running) -> None:
    keys = srv.settings.keys_file
    keys.write_text(entry("cccc"), "utf-8")
    with srv.client() as c:
        assert c.get(JOB, headers=bearer("cccc")).status_code == 404
        keys.unlink()
        r = c.get(JOB, headers=bearer("cccc"))
        assert r.status_code == 401
        ready = c.get("/readyz")
        # every key is revoked, the admin's too: the probe's answer is all there is
        assert ready.status_code == 503 and ready.json() == {"status": "not_ready"}
        keys.write_text(entry("cccc"), "utf-8")
        assert c.get(JOB, headers=bearer("cccc")).status_code == 404
        assert c.get("/readyz").status_code == 200


def test_an_invalid_keys_file_keeps_the_last_good_keys_and_says_not_ready(srv: Running) -> None:
    keys = srv.settings.keys_file
    keys.write_text(entry("dddd"), "utf-8")
    with srv.client() as c:
        assert c.get(JOB, headers=bearer("dddd")).status_code == 404
        keys.write_text(entry("dddd") + "[[keys]\nbroken", "utf-8")
        assert c.get(JOB, headers=bearer("dddd")).status_code == 404
        assert c.get("/readyz").json() == {"status": "not_ready"}
        ready = c.get("/readyz", headers=bearer("dddd"))  # an admin key: the details
        assert ready.status_code == 503
        assert "not valid TOML" in ready.json()["keys_error"]
        keys.write_text(entry("dddd"), "utf-8")
        assert c.get("/readyz").status_code == 200


def test_an_expired_key_gets_401_saying_expired(srv: Running) -> None:
    keys = srv.settings.keys_file
    keys.write_text(
        entry("old1", expires="2020-01-01") + entry("new1", expires="2999-01-01T00:00:00Z"),
        "utf-8",
    )
    with srv.client() as c:
        r = c.get(JOB, headers=bearer("old1"))
        assert r.status_code == 401
        assert "expired" in r.text and "old1" in r.text and "2020-01-01" in r.text
        assert c.get(JOB, headers=bearer("new1")).status_code == 404


def test_keys_add_expires_takes_a_date_or_duration_and_refuses_past_or_junk(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from service.auth import KeyRing
    from tests.service.test_keys_and_logs import cli

    keys = tmp_path / "keys.toml"
    base = ["keys", "add", "--tenant", "acme", "--groups", "support", "--keys-file", str(keys)]
    out = CliRunner().invoke(cli(), [*base, "--expires", "30d", "--json"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.stdout)
    grant = KeyRing(keys).verify(printed["key"])
    assert grant is not None and grant.expires is not None and not grant.expired()
    listed = CliRunner().invoke(cli(), ["keys", "list", "--keys-file", str(keys), "--json"])
    (row,) = json.loads(listed.stdout)["keys"]
    assert row["expires"] == grant.expires.isoformat() and row["expired"] is False
    for bad, says in (("2020-01-01", "in the past"), ("soon", "neither a date")):
        out = CliRunner().invoke(cli(), [*base, "--expires", bad])
        assert (
            out.exit_code != 0 and says in str(out.exception) and "--expires" in str(out.exception)
        )


def test_keys_revoke_removes_one_key_atomically_and_the_server_refuses_it(
    srv: Running,
) -> None:
    from typer.testing import CliRunner

    from tests.service.test_keys_and_logs import cli

    keys = srv.settings.keys_file
    keys.write_text("# operator notes\n" + entry("rev1") + entry("rev2"), "utf-8")
    os.chmod(keys, 0o640)
    with srv.client() as c:
        assert c.get(JOB, headers=bearer("rev1")).status_code == 404
        out = CliRunner().invoke(
            cli(), ["keys", "revoke", "rev1", "--keys-file", str(keys), "--json"]
        )
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["revoked"] == "rev1"
        assert c.get(JOB, headers=bearer("rev1")).status_code == 401
        assert c.get(JOB, headers=bearer("rev2")).status_code == 404
    text = keys.read_text("utf-8")
    assert "rev1" not in text and "rev2" in text and text.startswith("# operator notes")
    assert os.stat(keys).st_mode & 0o777 == 0o640
    assert not [p for p in keys.parent.iterdir() if p.name.endswith(".tmp")]


def test_keys_revoke_refuses_an_unknown_id_or_a_broken_file_and_changes_nothing(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from tests.service.test_keys_and_logs import cli

    keys = tmp_path / "keys.toml"
    keys.write_text(entry("only"), "utf-8")
    before = keys.read_bytes()
    for bad in ("nope", "../only", ""):
        out = CliRunner().invoke(cli(), ["keys", "revoke", bad, "--keys-file", str(keys)])
        assert out.exit_code != 0
        assert f"no key {bad!r}" in str(out.exception) and "keys list" in str(out.exception)
    assert keys.read_bytes() == before
    keys.write_text(entry("only") + "[[keys]\nbroken", "utf-8")
    out = CliRunner().invoke(cli(), ["keys", "revoke", "only", "--keys-file", str(keys)])
    assert out.exit_code != 0 and "not valid TOML" in str(out.exception)
    assert "broken" in keys.read_text("utf-8")
    out = CliRunner().invoke(
        cli(), ["keys", "revoke", "only", "--keys-file", str(tmp_path / "missing.toml")]
    )
    assert out.exit_code != 0 and "not found" in str(out.exception)
