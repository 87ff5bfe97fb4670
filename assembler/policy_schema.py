"""The policy file's schema: pydantic models, unknown keys rejected, every value checked at load.

A policy is plain data. ``assembler.policy`` loads and checks files; the rules in
``assembler.rules`` read these models. docs/policy.md documents every key with an example.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from assembler.types import CitationFormat, InjectionAction, OrderMode, PolicyIdentity
from core import linear_regex
from core.linear_regex import LinearPattern, compile_linear
from core.types import ScoreKind


def compile_pattern(pattern: str) -> LinearPattern:
    """Compile a policy pattern with RE2, which matches in time linear in the text's length.

    Raises:
        core.linear_regex.error: RE2 refuses it (bad syntax, a backreference, a lookaround).
    """
    return compile_linear(pattern)


def _check_regex(pattern: str) -> str:
    try:
        compile_pattern(pattern)
    except linear_regex.error as err:
        msg = (
            f"not a valid RE2 regular expression ({linear_regex.reason(err)}); policy patterns "
            "are RE2 syntax, which matches in linear time: no backreferences (\\1) and no "
            "lookaround ((?=, (?!, (?<=, (?<!); rewrite the pattern in RE2 syntax "
            "(https://github.com/google/re2/wiki/Syntax) and escape special characters "
            "like ( [ ."
        )
        raise ValueError(msg) from err
    return pattern


def _version_to_str(value: object) -> object:
    # YAML reads `version: 3` as an int; a version is a label, so accept numbers as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _one_or_many(value: object) -> object:
    # `min_score: {kind: rerank, value: 0}` is the common case; a list allows one per kind.
    if isinstance(value, Mapping):
        return [value]
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]
Glob = Annotated[str, Field(min_length=1)]
MetaScalar = str | int | float | bool
MetaMatch = dict[str, MetaScalar | tuple[MetaScalar, ...]]
PositiveDays = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Section):
    """Which candidates a rule applies to; every key given must match, an empty one matches all.

    ``sources`` and ``paths`` are globs (``*``, ``?``, ``[ab]``); ``tags`` match when the chunk
    has any of them; ``metadata`` matches when every key equals its value (or one of a list).
    """

    sources: tuple[Glob, ...] = ()
    paths: tuple[Glob, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: MetaMatch = Field(default_factory=dict)


class _Rule(_Section):
    @property
    def is_empty(self) -> bool:
        """Whether every setting is at its default, so that the rule cannot change anything."""
        return not self.model_fields_set or self == type(self)()


class Exclude(_Rule):
    """Rule 1: drop a candidate (reason ``excluded``) when any of these matches it."""

    sources: tuple[Glob, ...] = ()
    paths: tuple[Glob, ...] = ()
    tags: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    metadata: MetaMatch = Field(default_factory=dict)
    patterns: tuple[Regex, ...] = ()
    require_tags: tuple[str, ...] = ()
    require_sources: tuple[Glob, ...] = ()

    @cached_property
    def compiled_patterns(self) -> tuple[LinearPattern, ...]:
        """``patterns`` compiled with RE2, once per policy (they were checked at load)."""
        return tuple(compile_pattern(pattern) for pattern in self.patterns)


class FreshnessRule(Selector):
    """Freshness for the candidates the selector matches; unset values fall back to the top."""

    max_age_days: PositiveDays | None = None
    half_life_days: PositiveDays | None = None


class Freshness(_Rule):
    """Rule 2: a maximum age (reason ``stale``) and an exponential decay of the score."""

    max_age_days: PositiveDays | None = None
    half_life_days: PositiveDays | None = None
    drop_undated: bool = False
    rules: tuple[FreshnessRule, ...] = ()


class Boost(Selector):
    """Multiply the score of the candidates the selector matches by ``factor``."""

    factor: Annotated[float, Field(gt=0)]


class Priority(_Section):
    """Rule 3: multiplicative boosts, and documents pinned to the front of the context."""

    boosts: tuple[Boost, ...] = ()
    pinned_doc_ids: tuple[str, ...] = ()


class Injection(_Section):
    """Rule 4: chunks that look like instructions to the model are flagged or dropped."""

    action: InjectionAction = InjectionAction.FLAG
    patterns: tuple[Regex, ...] = ()

    @cached_property
    def compiled_patterns(self) -> tuple[LinearPattern, ...]:
        """``patterns`` compiled with RE2, once per policy (they were checked at load)."""
        return tuple(compile_pattern(pattern) for pattern in self.patterns)


class Dedupe(_Section):
    """Rule 5: near-duplicate chunks collapse to the best one packed."""

    enabled: bool = True
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    shingle_words: Annotated[int, Field(ge=1, le=8)] = 3
    dense_threshold: Annotated[float, Field(gt=0, le=1)] | None = None


class MinScore(_Section):
    """A score threshold; it applies only to candidates whose score is of this ``kind``."""

    kind: ScoreKind
    value: float


class Packing(_Section):
    """Rule 6: fill the token budget by value."""

    reserve_tokens: Annotated[int, Field(ge=0)] = 0
    min_score: Annotated[tuple[MinScore, ...], BeforeValidator(_one_or_many)] = ()
    max_per_source: Annotated[int, Field(ge=1)] | None = None
    source_caps: dict[Glob, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    max_per_doc: Annotated[int, Field(ge=1)] | None = None
    trim_last: bool = False
    trim_min_tokens: Annotated[int, Field(ge=1)] = 24

    @model_validator(mode="after")
    def _one_threshold_per_kind(self) -> Packing:
        kinds = [threshold.kind.value for threshold in self.min_score]
        repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
        if repeated:
            msg = f"more than one min_score for kind {', '.join(repeated)}; keep one per kind"
            raise ValueError(msg)
        return self


class Citations(_Section):
    """Rule 8: how items are delimited and cited."""

    format: CitationFormat = CitationFormat.XML
    include_list: bool = True


class Policy(_Section):
    """A context policy: named, versioned, and checked in full when it is loaded.

    Example:
        >>> policy = Policy(name="support", version="1", order=OrderMode.EDGES)
        >>> policy.identity.name
        'support'
    """

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][\w.-]*$")]
    version: Annotated[str, BeforeValidator(_version_to_str), Field(min_length=1)]
    description: str = ""
    exclude: Exclude = Field(default_factory=Exclude)
    freshness: Freshness = Field(default_factory=Freshness)
    priority: Priority = Field(default_factory=Priority)
    injection: Injection = Field(default_factory=Injection)
    dedupe: Dedupe = Field(default_factory=Dedupe)
    packing: Packing = Field(default_factory=Packing)
    order: OrderMode = OrderMode.RELEVANCE
    citations: Citations = Field(default_factory=Citations)

    _sha256: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _pins_not_excluded(self) -> Policy:
        clash = sorted(set(self.priority.pinned_doc_ids) & set(self.exclude.doc_ids))
        if clash:
            msg = (
                f"documents {', '.join(clash)} are both pinned (priority.pinned_doc_ids) and "
                "excluded (exclude.doc_ids); remove them from one of the two lists"
            )
            raise ValueError(msg)
        return self

    @property
    def identity(self) -> PolicyIdentity:
        """Name, version, and the file's sha256 when the policy was loaded from a file."""
        return PolicyIdentity(name=self.name, version=self.version, sha256=self._sha256)

    def with_sha256(self, sha256: str) -> Policy:
        """Return a copy that reports ``sha256`` as its file digest (used by ``load_policy``)."""
        copy = self.model_copy()
        copy._sha256 = sha256
        return copy

    @property
    def adjusts_scores(self) -> bool:
        """Whether boosts or decay are configured, i.e. scores become ``adjusted-from-<kind>``."""
        decay = self.freshness.half_life_days is not None or any(
            rule.half_life_days is not None for rule in self.freshness.rules
        )
        return decay or bool(self.priority.boosts)


def policy_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a policy file (what ``ragctx policy schema`` prints).

    Returns:
        A JSON Schema (draft 2020-12) document as a dict.
    """
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ragctx context policy"
    return schema
