"""The sync planner is pure: what the store holds + what a source yields → the plan, no store."""

from __future__ import annotations

from ingest.sync import (
    Held,
    Partition,
    PlannedAction,
    PlannedCleanup,
    PlannedDelete,
    PlannedWrite,
    SourcePlanner,
    SyncOptions,
    plan_source,
)
from ingest.types import Document, InputProblem


def doc(doc_id: str, text: str = "text", tenant: str = "acme") -> Document:
    return Document(doc_id, text, source="src", path=f"src/{doc_id}.md", tenant=tenant)


def held(*docs: Document, chunks: int = 2) -> dict[tuple[str, str], Held]:
    """The store holding every chunk of each of ``docs`` (ids ``<doc_id>-<hash[:6]>-<i>``)."""
    out: dict[tuple[str, str], Held] = {}
    for d in docs:
        entry = out.setdefault((d.tenant, d.doc_id), Held(path=d.path))
        h = d.doc_hash
        entry.versions[h] = {i: f"{d.doc_id}-{h[:6]}-{i}" for i in range(chunks)}
        entry.counts[h] = chunks
    return out


def test_new_changed_unchanged_and_gone_documents() -> None:
    a, b, c = doc("a"), doc("b"), doc("c")
    store = held(a, b, c)
    b2 = doc("b", "changed")
    planner = SourcePlanner("src", store, scope_tenant="acme")
    steps = [planner.take(item) for item in (a, b2, doc("new"))]
    assert steps[0] is None  # unchanged, nothing to write
    assert steps[1] == PlannedWrite(
        b2, b2.doc_hash, False, tuple(store[("acme", "b")].ids_except(None))
    )
    assert isinstance(steps[2], PlannedWrite) and steps[2].is_new and steps[2].stale_ids == ()
    plan = planner.finish(SyncOptions(mass_delete_min_docs=5))
    assert (plan.added, plan.updated, plan.unchanged) == (1, 1, 1)
    assert plan.deletes == (
        PlannedDelete("acme", "c", tuple(store[("acme", "c")].ids_except(None))),
    )
    assert plan.withheld is None
    assert plan.actions() == (
        PlannedAction("update", "src", "b"),
        PlannedAction("add", "src", "new"),
        PlannedAction("delete", "src", "c"),
    )


def test_leftovers_of_an_interrupted_replacement_are_cleaned_up() -> None:
    a = doc("a")
    store = held(a, doc("a", "older"))  # two versions of a: the old one survived a crash
    [step] = [SourcePlanner("src", store, scope_tenant="acme").take(a)]
    assert isinstance(step, PlannedCleanup)
    assert step.ids == tuple(store[("acme", "a")].ids_except(a.doc_hash)) and len(step.ids) == 2


def test_a_partial_version_is_written_again() -> None:
    a = doc("a")
    store = held(a)
    del store[("acme", "a")].versions[a.doc_hash][1]  # a crash left one of its two chunks
    step = SourcePlanner("src", store, scope_tenant="acme").take(a)
    assert isinstance(step, PlannedWrite) and not step.is_new


def test_a_failed_file_keeps_its_stored_documents() -> None:
    a, b = doc("a"), doc("b")
    problem = InputProblem("src/b.md", "invalid UTF-8; fix it")
    plan = plan_source("src", held(a, b), [a, problem], scope_tenant="acme")
    assert plan.deletes == () and plan.problems == (problem,)
    assert plan.notes == ("kept 'b': its file 'src/b.md' failed to read; fix it and re-run",)


def test_a_document_that_fails_to_chunk_leaves_the_plan() -> None:
    planner = SourcePlanner("src", {}, scope_tenant="acme")
    planner.take(doc("a"))
    write = planner.take(doc("b"))
    assert isinstance(write, PlannedWrite)
    problem = InputProblem("src/b.md", "cannot chunk the document", doc_id="b")
    planner.fail(problem, write)
    plan = planner.finish(SyncOptions())
    assert plan.actions() == (PlannedAction("add", "src", "a"),)
    assert plan.problems == (problem,)


def test_an_empty_source_or_a_mass_deletion_is_withheld_unless_allowed() -> None:
    docs = [doc(f"d{i}") for i in range(10)]
    store = held(*docs)
    empty = plan_source("src", store, [], scope_tenant="acme")
    assert empty.withheld is not None and "yielded no documents" in empty.withheld.message
    assert len(empty.deletes) == 10 and empty.deleting == () and empty.actions() == ()
    most = plan_source("src", store, docs[:3], scope_tenant="acme")
    assert most.withheld is not None and most.withheld.would_delete == 7
    assert most.withheld.doc_ids == tuple(f"d{i}" for i in range(3, 10))
    allowed = plan_source(
        "src", store, docs[:3], scope_tenant="acme", options=SyncOptions(allow_mass_delete=True)
    )
    assert allowed.withheld is None and len(allowed.deleting) == 7
    few = plan_source("src", store, docs[:7], scope_tenant="acme")
    assert few.withheld is None and [d.doc_id for d in few.deleting] == ["d7", "d8", "d9"]


def test_a_partition_plans_and_deletes_only_its_own_documents() -> None:
    docs = [doc(f"d{i}") for i in range(20)]
    part = Partition(0, 2)
    mine = [d for d in docs if part.owns(d.doc_id)]
    options = SyncOptions(partition=part, allow_mass_delete=True)
    plan = plan_source("src", held(*docs), [], scope_tenant="acme", options=options)
    assert sorted(d.doc_id for d in plan.deletes) == sorted(d.doc_id for d in mine)
    plan = plan_source("src", {}, docs, scope_tenant="acme", options=options)
    assert [a.doc_id for a in plan.writes] == [d.doc_id for d in mine]


def test_per_record_tenancy_deletes_only_within_the_tenants_it_read() -> None:
    acme, globex = doc("a", tenant="acme"), doc("g", tenant="globex")
    plan = plan_source(
        "src",
        held(acme, globex),
        [doc("b")],
        scope_tenant=None,
        options=SyncOptions(allow_mass_delete=True),
    )
    assert [(d.tenant, d.doc_id) for d in plan.deletes] == [("acme", "a")]
    assert any("globex" in note for note in plan.notes)


def test_the_plan_is_deterministic() -> None:
    docs = [doc(f"d{i}", text=f"t{i}") for i in range(6)]
    store = held(*docs[:4], doc("old"))
    items = [docs[2], doc("d3", "changed"), *docs[4:]]
    assert plan_source("src", store, items, scope_tenant="acme") == plan_source(
        "src", store, items, scope_tenant="acme"
    )
