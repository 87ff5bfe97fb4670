"""Bounded cost (§3.2): every regex on untrusted text runs in time linear in the text.

Policy patterns are compiled with RE2 and refused at load when RE2 cannot run them; the
patterns the code applies to ingested and request text are RE2 too, or linear by their form.
Timings are the best of a few runs on a shared machine; the growth test compares n with 16n,
where linear time gives a ratio near 16 and quadratic time one near 256.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assembler import trim, untrusted
from assembler.policy import PolicyError, load_policy
from assembler.policy_schema import Policy
from assembler.rules.exclude import exclusion
from assembler.rules.injection import injection_signals
from core.errors import InvalidInputError
from ingest import chunking, readers, sources, text_spans
from tests.assembler.builders import candidate


def _best_seconds(work: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def test_catastrophic_policy_pattern_finishes_in_milliseconds() -> None:
    # With Python's re, `(a+)+$` on "a" * n + "b" takes time exponential in n: n = 22 already
    # takes about a second, n = 30 minutes. Demo (do not run with a large n):
    #     import re, time; t = time.perf_counter(); re.search(r"(a+)+$", "a" * 22 + "b")
    policy = Policy(name="p", version="1", exclude={"patterns": [r"(a+)+$"]})
    chunk = candidate("c", text="a" * 30 + "b")
    elapsed = _best_seconds(lambda: exclusion(policy.exclude, chunk), repeats=1)
    assert exclusion(policy.exclude, chunk) is None
    assert exclusion(policy.exclude, candidate("c", text="b" + "a" * 30)) is not None
    assert elapsed < 0.05


def test_catastrophic_injection_pattern_finishes_in_milliseconds() -> None:
    # The screen searches a policy's own injection patterns with RE2 as well.
    policy = Policy(name="p", version="1", injection={"patterns": [r"(a+)+$"]})
    elapsed = _best_seconds(lambda: injection_signals(policy.injection, "a" * 30 + "b"), repeats=1)
    assert "pattern[0]" not in injection_signals(policy.injection, "a" * 30 + "b")
    assert "pattern[0]" in injection_signals(policy.injection, "b" + "a" * 30)
    assert elapsed < 0.05


def test_policy_patterns_compile_once() -> None:
    policy = Policy(name="p", version="1", exclude={"patterns": ["x"]})
    assert policy.exclude.compiled_patterns is policy.exclude.compiled_patterns


def test_lone_surrogate_in_text_does_not_break_a_pattern() -> None:
    policy = Policy(name="p", version="1", exclude={"patterns": ["secret"]})
    assert exclusion(policy.exclude, candidate("c", text="\ud800 secret")) is not None


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        (r"(a)\1", "invalid escape sequence"),
        (r"foo(?=bar)", "invalid perl operator"),
        (r"(?<!not )approved", "invalid perl operator"),
    ],
)
@pytest.mark.parametrize("section", ["exclude", "injection"])
def test_backtracking_pattern_is_refused_at_load(
    tmp_path: Path, pattern: str, what: str, section: str
) -> None:
    file = tmp_path / "bad.yaml"
    quoted = pattern.replace("\\", "\\\\")
    file.write_text(f'name: p\nversion: 1\n{section}:\n  patterns: ["ok", "{quoted}"]\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    message = str(caught.value)
    assert str(file) in message
    assert f"{section}.patterns[1]" in message
    assert repr(pattern) in message
    assert what in message
    assert "RE2 syntax" in message


def test_glob_refused_by_re2_names_the_pattern() -> None:
    with pytest.raises(InvalidInputError, match=r"glob pattern '\[z-a\]'.*bad character range"):
        sources._compile_glob("[z-a]")


def _linear(build: Callable[[int], str], work: Callable[[str], object], n: int) -> None:
    small, large = build(n), build(16 * n)
    ratio = _best_seconds(lambda: work(large)) / max(_best_seconds(lambda: work(small)), 1e-6)
    # Linear: ~16 (timer noise at the small size pushes it up a little); quadratic: ~256.
    assert ratio < 64, f"time grew {ratio:.0f}x for 16x the input"


# Each case is the worst input known for the pattern under a backtracking engine; n is large
# enough that the small run takes milliseconds, so timer noise does not swamp the ratio.
CASES: dict[str, tuple[Callable[[int], str], Callable[[str], object], int]] = {
    "policy exclude pattern": (
        lambda n: "a" * n + "b",
        lambda text: exclusion(
            Policy(name="p", version="1", exclude={"patterns": [r"(a+)+$", r"\s+#+\s*$"]}).exclude,
            candidate("c", text=text),
        ),
        20_000,
    ),
    "delimiter escaping (assembler.untrusted)": (
        lambda n: "<" + " " * n + "x",
        untrusted.escape_delimiters,
        20_000,
    ),
    "trim boundaries (assembler.trim, re: linear by its form)": (
        lambda n: ('."' * n) + "x",
        lambda text: list(trim._BOUNDARY.finditer(text)),
        80_000,
    ),
    "closing hashes of a heading (ingest.chunking)": (
        lambda n: "a" + " " * n + "x",
        lambda text: chunking._CLOSING_HASHES.sub("", text),
        20_000,
    ),
    "front matter (ingest.readers, re: linear by its form)": (
        lambda n: "---\n" + "--- \t x\n" * n,
        readers._FRONT_MATTER.match,
        20_000,
    ),
    "sentence breaks (ingest.text_spans, re: linear by its form)": (
        lambda n: ('.""' * n) + "\n 1x" * n,
        text_spans.split_sentences,
        20_000,
    ),
    "include/exclude glob (ingest.sources)": (
        # With re, **/**/**/**/**/**/**/**/x took 20 s on a 40-folder path (shared machine,
        # 1 thread); pathspec folds repeated **, but not * runs: RE2 matches them in linear time.
        lambda n: "a" * n + "y",
        sources._glob_spec(("*" * 8 + "x",)).match_file,
        20_000,
    ),
    "first H1 (ingest.readers)": (
        lambda n: "# a" + " " * n + "x",
        readers._first_h1,
        # RE2 switches to a slower engine for submatches on long texts: start past that.
        200_000,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_time_grows_linearly_with_untrusted_text(name: str) -> None:
    build, work, n = CASES[name]
    _linear(build, work, n)
