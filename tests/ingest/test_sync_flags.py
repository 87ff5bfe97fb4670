"""The new sync flags travel from `ragctx ingest` to a server job: hand-off body → admin specs."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ingest import FieldMapping, SourceSpec, SyncOptions
from ingest.sync import SyncReport, WithheldDeletion
from service.api.admin_schemas import IngestRequest
from service.api.routes.admin import _specs
from service.handoff import job_body


def test_per_record_tenancy_and_allow_mass_delete_reach_the_server_job(tmp_path: Path) -> None:
    spec = SourceSpec(tmp_path, name="export", tenant="acme", tenant_from_records=True)
    body = job_body([spec], SyncOptions(allow_mass_delete=True), collection="docs")
    request = IngestRequest.model_validate(body)
    assert request.allow_mass_delete is True
    [server_spec] = _specs(request, roots=(tmp_path,))
    assert server_spec.tenant_from_records is True and server_spec.tenant == "acme"


def test_withheld_deletions_survive_the_round_trip_through_json() -> None:
    withheld = WithheldDeletion("src", "acme", 6, 10, ("a", "b"), "… --allow-mass-delete")
    report = SyncReport("docs", ("src",), 0, 0, 4, 0, 0, 0, 0, 0.1, withheld=(withheld,))
    assert SyncReport.from_dict(report.to_dict()).withheld == (withheld,)
    raw = report.to_dict()
    del raw["withheld"]  # a server from before the deletion guards
    assert SyncReport.from_dict(raw).withheld == ()


def test_a_spec_travels_to_the_server_job_unchanged_as_the_same_json_shape(
    tmp_path: Path,
) -> None:
    fields = FieldMapping(id="key", text="body", metadata=("team",))
    spec = SourceSpec(
        tmp_path / "kb",
        include=("**/*.jsonl",),
        exclude=("drafts/",),
        tenant="acme",
        groups=("support",),
        tags=("kb",),
        fields=fields,
        kind="jsonl",
    )
    (tmp_path / "kb").mkdir()
    body = job_body([spec], SyncOptions(dry_run=True), collection="docs")
    # the HTTP contract of POST /v1/admin/ingest: these keys, JSON values only
    [sent] = body["sources"]
    assert sent == {
        "path": str((tmp_path / "kb").resolve()),
        "name": (tmp_path / "kb").as_posix(),
        "include": ["**/*.jsonl"],
        "exclude": ["drafts/"],
        "tenant": "acme",
        "groups": ["support"],
        "tags": ["kb"],
        "fields": {
            "id": "key",
            "text": "body",
            "title": "title",
            "updated_at": "updated_at",
            "tenant": "tenant",
            "groups": "groups",
            "tags": "tags",
            "metadata": ["team"],
        },
        "kind": "jsonl",
        "tenant_from_records": False,
    }
    [server_spec] = _specs(IngestRequest.model_validate(body), roots=(tmp_path,))
    assert isinstance(server_spec, SourceSpec)
    expected = spec.model_copy(update={"path": (tmp_path / "kb").resolve(), "name": sent["name"]})
    assert server_spec.model_dump() == expected.model_dump()


def test_the_request_schema_keeps_the_http_limits_of_a_source(tmp_path: Path) -> None:
    def errors(**src: object) -> list[tuple[object, ...]]:
        try:
            IngestRequest.model_validate({"sources": [src]})
        except ValidationError as err:
            return [(e["loc"][-1], e["type"]) for e in err.errors()]
        return []

    ok = {"path": str(tmp_path), "tenant": "acme", "groups": ["public"]}
    assert errors(**ok) == []
    assert errors(**{**ok, "path": ""}) == [("path", "string_too_short")]
    assert errors(**{**ok, "path": "x" * 4097}) == [("path", "string_too_long")]
    assert errors(**{**ok, "path": ["/etc"]}) == [("path", "string_type")]
    assert errors(**{**ok, "kind": "exe"}) == [("kind", "literal_error")]
    assert errors(**{**ok, "tenant": ""}) == [("tenant", "string_too_short")]
    assert errors(**{**ok, "grant": "operator"}) == [("grant", "extra_forbidden")]
    assert errors(**{**ok, "fields": {"id": "", "x": 1}}) == [
        ("id", "string_too_short"),
        ("x", "extra_forbidden"),
    ]
    assert errors(path=str(tmp_path)) == [("tenant", "missing"), ("groups", "missing")]
