"""The new sync flags travel from `ragctx ingest` to a server job: hand-off body → admin specs."""

from __future__ import annotations

from pathlib import Path

from ingest import SourceSpec, SyncOptions
from ingest.sync import SyncReport, WithheldDeletion
from service.api.routes.admin import _specs
from service.api.schemas import IngestRequest
from service.handoff import job_body, report_from_dict


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
    assert report_from_dict(report.to_dict()).withheld == (withheld,)
    raw = report.to_dict()
    del raw["withheld"]  # a server from before the deletion guards
    assert report_from_dict(raw).withheld == ()
