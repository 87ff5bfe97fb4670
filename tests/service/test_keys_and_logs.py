"""The keys file and the `keys` commands; JSON logs. No server needed."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InvalidInputError
from service import audit
from service.auth import KeyRing, KeysFileError, add_key, hash_key, load_keys
from service.telemetry import JsonFormatter, configure_logging
from tests.cli import keys_cli as cli

REPO = Path(__file__).resolve().parents[2]


def test_keys_add_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    result = CliRunner().invoke(
        cli(),
        [
            "keys",
            "add",
            "--tenant",
            "acme",
            "--groups",
            "support,engineering",
            "--id",
            "ops",
            "--keys-file",
            str(keys),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    key = printed["key"]
    assert printed["groups"] == ["support", "engineering"] and printed["admin"] is False
    text = keys.read_text()
    assert key not in text and hash_key(key) in text
    grant = KeyRing(keys).verify(key)
    assert grant is not None and grant.principal().tenant == "acme"
    assert KeyRing(keys).verify(key + "x") is None
    listed = CliRunner().invoke(cli(), ["keys", "list", "--keys-file", str(keys)])
    assert listed.stdout.strip() == "ops\tacme\tsupport,engineering"


def test_keys_add_refuses_a_duplicate_id_and_no_groups(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    add_key(keys, tenant="acme", groups=("support",), key_id="a")
    with pytest.raises(InvalidInputError, match="already in"):
        add_key(keys, tenant="acme", groups=("support",), key_id="a")
    result = CliRunner().invoke(
        cli(), ["keys", "add", "--tenant", "acme", "--keys-file", str(keys)]
    )
    assert isinstance(result.exception, InvalidInputError)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("keys = 3", "array of tables"),
        ("[[keys]]\nid = 'a'\nsha256 = 'xyz'\ntenant = 't'\n", r"\(a\): 'sha256'"),
        (
            "[[keys]]\nid = 'a'\nsha256 = '" + "0" * 64 + "'\ntenant = 't'\nrole = 'x'\n",
            r"unknown field\(s\) \['role'\]",
        ),
        (
            "[[keys]]\nid = 'a'\nsha256 = '" + "0" * 64 + "'\ntenant = 't'\ngroups = 'g'\n",
            "'groups' must be a list",
        ),
        ("not [toml", "not valid TOML"),
    ],
)
def test_a_malformed_keys_file_names_the_entry(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(KeysFileError, match=match):
        load_keys(path)


def test_the_sample_keys_file_holds_the_documented_demo_keys() -> None:
    ring = KeyRing(REPO / "data" / "keys.sample.toml")
    acme = ring.verify("demo-acme-support-key")
    assert acme is not None and (acme.tenant, acme.groups, acme.admin) == (
        "acme",
        ("support",),
        False,
    )
    globex = ring.verify("demo-globex-support-key")
    assert globex is not None and globex.tenant == "globex"
    admin = ring.verify("demo-admin-key")
    assert admin is not None and admin.admin


def test_json_logs_are_one_object_per_line_and_audit_lines_stay_flat() -> None:
    fmt = JsonFormatter()
    record = logging.LogRecord("ragctx.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.job_id = "j1"
    line = json.loads(fmt.format(record))
    assert line["message"] == "hello you" and line["level"] == "warning"
    assert line["job_id"] == "j1"
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        failed = logging.LogRecord("ragctx.x", logging.ERROR, __file__, 1, "x", (), sys.exc_info())
    assert "ZeroDivisionError" in json.loads(fmt.format(failed))["exception"]
    audit = logging.LogRecord("ragctx.audit", logging.INFO, __file__, 1, "%s", ("{}",), None)
    audit.audit = {"event": "audit", "status": 200}
    assert json.loads(fmt.format(audit)) == {
        "logger": "ragctx.audit",
        "event": "audit",
        "status": 200,
    }


@pytest.mark.parametrize("json_logs", [True, False])
def test_logs_are_written_by_a_writer_thread_and_flushed_on_stop(
    capsys: pytest.CaptureFixture[str], json_logs: bool
) -> None:
    # `ragctx serve` logs through a queue: the event loop only enqueues, a thread formats
    # and writes; stop() writes what is still queued.
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    writers: list[str] = []

    class Spy(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            writers.append(threading.current_thread().name)
            return True

    try:
        listener = configure_logging(json_logs=json_logs)
        listener.handlers[0].addFilter(Spy())
        audit.write({"event": "audit", "status": 200, "doc_ids": ["ü"]})
        logging.getLogger("ragctx.x").warning("hello %s", "you")
        listener.stop()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert writers and threading.main_thread().name not in writers
    if json_logs:
        assert json.loads(lines[0]) == {
            "logger": "ragctx.audit",
            "event": "audit",
            "status": 200,
            "doc_ids": ["ü"],
        }
        assert json.loads(lines[1])["message"] == "hello you"
    else:
        assert lines[0] == 'INFO ragctx.audit: {"event": "audit", "status": 200, "doc_ids": ["ü"]}'
        assert lines[1] == "WARNING ragctx.x: hello you"


def test_without_an_exporter_spans_are_not_recorded_but_every_trace_has_its_own_id() -> None:
    import os
    import random

    from service.telemetry import build_telemetry

    telemetry = build_telemetry("none")
    tracer = telemetry.tracer
    ids = []
    for _ in range(3):
        random.seed(7)  # a test (or a library) seeding the global generator changes nothing
        with tracer.start_as_current_span("root") as root:
            with tracer.start_as_current_span("child") as child:
                assert child.get_span_context().trace_id == root.get_span_context().trace_id
            assert not root.is_recording()
            ids.append(root.get_span_context().trace_id)
    assert len(set(ids)) == 3 and all(0 < i < 2**128 for i in ids)
    recorded = build_telemetry("memory")
    with recorded.tracer.start_as_current_span("root") as span:
        assert span.is_recording()
    assert recorded.memory_exporter is not None
    assert [s.name for s in recorded.memory_exporter.get_finished_spans()] == ["root"]

    # a forked child draws other ids than its parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        with tracer.start_as_current_span("in child") as span:
            os.write(write, span.get_span_context().trace_id.to_bytes(16, "big"))
        os._exit(0)
    os.close(write)
    with tracer.start_as_current_span("in parent") as span:
        parent_id = span.get_span_context().trace_id
    child_id = int.from_bytes(os.read(read, 16), "big")
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id != parent_id


def test_settle_heap_freezes_what_is_loaded_and_raises_the_young_threshold() -> None:
    import gc

    from service.runtime import GC_YOUNG_THRESHOLD, settle_heap

    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
