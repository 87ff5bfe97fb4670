"""Policy files: the shipped ones load, and a bad one fails naming the file, the key, the fix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from assembler.policy import (
    PolicyError,
    check_policies,
    load_policies,
    load_policy,
    policy_json_schema,
)
from assembler.types import OrderMode
from core.types import ScoreKind
from tests.assembler.builders import candidate, pack

POLICY_DIR = Path(__file__).resolve().parents[2] / "data" / "policies"


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_policies_are_valid_and_uniquely_named() -> None:
    assert check_policies([POLICY_DIR]) == []
    loaded = load_policies(POLICY_DIR)
    assert {"default", "support-fresh-release-notes", "legal-approved-recent"} <= set(loaded)


def test_loaded_policy_reports_the_files_sha256(tmp_path: Path, counter) -> None:
    path = write(tmp_path, "name: p\nversion: 3\norder: edges\n")
    loaded = load_policy(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.policy.version == "3"  # a YAML number is read as a version label
    assert loaded.policy.order is OrderMode.EDGES
    result = pack([candidate("a")], counter, rules=loaded.policy)
    assert (result.policy.name, result.policy.version) == ("p", "3")
    assert result.policy.sha256 == loaded.sha256


def test_unknown_key_names_file_key_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\nexclude:\n  tagz: [draft]\n")
    with pytest.raises(PolicyError, match=r"p\.yaml: exclude\.tagz: unknown key.*'tags'") as err:
        load_policy(path)
    assert err.value.key == "exclude.tagz"
    assert err.value.path == str(path)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\nbudget: 100\n")
    with pytest.raises(PolicyError, match=r"p\.yaml: budget: unknown key; allowed keys here"):
        load_policy(path)


@pytest.mark.parametrize("missing", ["name", "version"])
def test_missing_name_or_version(tmp_path: Path, missing: str) -> None:
    text = "name: p\n" if missing == "version" else "version: 1\n"
    path = write(tmp_path, text)
    with pytest.raises(PolicyError, match=rf"p\.yaml: {missing}: required key is missing"):
        load_policy(path)


def test_wrong_type_names_the_key_and_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\npacking:\n  reserve_tokens: lots\n")
    with pytest.raises(PolicyError, match=r"packing\.reserve_tokens: .*integer.*'lots'"):
        load_policy(path)


def test_bad_enum_lists_the_valid_values(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\norder: newest\n")
    with pytest.raises(PolicyError, match=r"order: .*'relevance', 'document' or 'edges'"):
        load_policy(path)


def test_bad_regex_names_the_list_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\nexclude:\n  patterns: ['ok', '(unclosed']\n")
    with pytest.raises(PolicyError, match=r"exclude\.patterns\[1\]: not a valid RE2 regular"):
        load_policy(path)


def test_nested_list_entry_key(tmp_path: Path) -> None:
    text = "name: p\nversion: 1\npriority:\n  boosts:\n    - tags: [x]\n      factor: -1\n"
    with pytest.raises(PolicyError, match=r"priority\.boosts\[0\]\.factor: .*greater than 0"):
        load_policy(write(tmp_path, text))


def test_repeated_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\norder: edges\norder: document\n")
    with pytest.raises(PolicyError, match=r"\(yaml\): .*'order' appears twice"):
        load_policy(path)


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: [1\n")
    with pytest.raises(PolicyError, match=r"\(yaml\): line \d+, column \d+"):
        load_policy(path)


def test_not_a_mapping_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"\(top level\): .*got a list"):
        load_policy(write(tmp_path, "- name\n"))
    with pytest.raises(PolicyError, match=r"\(top level\): .*got an empty file"):
        load_policy(write(tmp_path, "", name="empty.yaml"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: \(file\): cannot read it"):
        load_policy(tmp_path / "nope.yaml")


def test_pinned_and_excluded_document_is_refused(tmp_path: Path) -> None:
    text = "name: p\nversion: 1\nexclude: {doc_ids: [d1]}\npriority: {pinned_doc_ids: [d1]}\n"
    with pytest.raises(PolicyError, match=r"both pinned .* and excluded"):
        load_policy(write(tmp_path, text))


def test_min_score_accepts_one_mapping_or_a_list_but_one_per_kind(tmp_path: Path) -> None:
    one = load_policy(
        write(tmp_path, "name: p\nversion: 1\npacking:\n  min_score: {kind: rerank, value: 0}\n")
    )
    assert one.policy.packing.min_score[0].kind is ScoreKind.RERANK
    text = (
        "name: p\nversion: 1\npacking:\n  min_score:\n"
        "    - {kind: rrf, value: 0.01}\n    - {kind: rrf, value: 0.02}\n"
    )
    with pytest.raises(PolicyError, match=r"packing: more than one min_score for kind rrf"):
        load_policy(write(tmp_path, text, name="two.yaml"))


def test_error_mentions_how_many_more_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "name: p\nversion: 1\nfoo: 1\nbar: 2\n")
    with pytest.raises(PolicyError, match=r"and 1 more; `ragctx policy check"):
        load_policy(path)


def test_check_policies_lists_every_problem_and_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "name: same\nversion: 1\n", name="a.yaml")
    write(tmp_path, "name: same\nversion: 1\n", name="b.yaml")
    write(tmp_path, "name: bad\nversion: 1\nfoo: 1\norder: x\n", name="c.yaml")
    problems = check_policies([tmp_path])
    keys = sorted((Path(problem.path).name, problem.key) for problem in problems)
    assert keys == [("b.yaml", "name"), ("c.yaml", "foo"), ("c.yaml", "order")]
    assert "already used by" in str(problems[0]) or "already used by" in str(problems[-1])


def test_load_policies_refuses_a_half_configured_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"holds no policy file"):
        load_policies(tmp_path)
    write(tmp_path, "name: ok\nversion: 1\n", name="a.yaml")
    write(tmp_path, "name: broken\n", name="b.yaml")
    with pytest.raises(PolicyError, match=r"b\.yaml: version"):
        load_policies(tmp_path)
    with pytest.raises(PolicyError, match=r"not a folder"):
        load_policies(tmp_path / "missing")


def test_json_schema_forbids_unknown_keys_and_requires_name_and_version() -> None:
    schema = policy_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"name", "version"}
    assert schema["additionalProperties"] is False
    assert {"exclude", "freshness", "priority", "injection", "dedupe", "packing"} <= set(
        schema["properties"]
    )
    assert schema["$defs"]["Exclude"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("prompt: {limits: {evidence: {floor: 1.5}}}", "prompt.limits.evidence.floor", "share"),
        (
            "prompt: {limits: {evidence: {floor: 900, ceiling: 300}}}",
            "prompt.limits.evidence",
            "above ceiling",
        ),
        ("prompt: {limits: {question: {floor: 10}}}", "prompt", "required, not filled"),
        ("prompt: {order: [question, system]}", "prompt", "every section once"),
        ("prompt: {context_role: assistant}", "prompt.context_role", "user"),
        ("conversation: {keep_last_turns: -1}", "conversation.keep_last_turns", "0"),
        ("tool_outputs: {max_tokens: 4}", "tool_outputs.max_tokens", "16"),
        ("redact: {patterns: [{name: acct, pattern: 'x'}]}", "redact.patterns[0].name", "pattern"),
        ("redact: {patterns: [{name: ACCT, pattern: '(a'}]}", "redact.patterns[0].pattern", "RE2"),
        ("versions: {mode: newest}", "versions.mode", "prefer_latest"),
    ],
)
def test_the_whole_prompt_sections_are_checked_with_the_key_named(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    write(tmp_path, f"name: p\nversion: 1\n{text}\n", name="p.yaml")
    problems = check_policies([tmp_path])
    assert [problem.key for problem in problems] == [key], problems
    assert words in problems[0].message
