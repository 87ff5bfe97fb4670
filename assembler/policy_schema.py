"""The policy file's schema: pydantic models, unknown keys rejected, every value checked at load.

A policy is plain data. ``assembler.policy`` loads and checks files; the rules in
``assembler.rules`` read these models. docs/policy.md documents every key with an example.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from assembler.types import (
    CitationFormat,
    InjectionAction,
    ItemKind,
    OrderMode,
    PolicyIdentity,
    SectionName,
    VersionsMode,
)
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


def _off(value: object) -> object:
    # YAML 1.1 reads a bare `off` as false; `mode: off` means the mode named "off".
    return "off" if value is False else value


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

    action: Annotated[InjectionAction, BeforeValidator(_off)] = InjectionAction.FLAG
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


class Versions(_Section):
    """Documents of one series (``series`` and ``version`` metadata, or ``supersedes``)."""

    mode: Annotated[VersionsMode, BeforeValidator(_off)] = VersionsMode.OFF


def _share_or_tokens(value: float) -> float:
    if isinstance(value, float) and not 0 < value <= 1:
        msg = (
            f"{value} is neither a whole number of tokens nor a share of the budget; write "
            "tokens as a whole number (800) or a share as a fraction in (0, 1] (0.25)"
        )
        raise ValueError(msg)
    return value


# A whole number is tokens; a fraction in (0, 1] is a share of the request's budget.
TokensOrShare = Annotated[Annotated[int, Field(ge=0)] | float, AfterValidator(_share_or_tokens)]


class Limit(_Section):
    """A section's floor (tokens reserved for it) and ceiling (the most it may use)."""

    floor: TokensOrShare = 0
    ceiling: TokensOrShare | None = None

    def resolve(self, budget: int) -> tuple[int, int | None]:
        """Floor and ceiling in tokens for a request of ``budget`` tokens."""

        def tokens(value: float) -> int:
            return int(value * budget) if isinstance(value, float) else int(value)

        floor = tokens(self.floor)
        ceiling = None if self.ceiling is None else tokens(self.ceiling)
        return floor, ceiling

    @model_validator(mode="after")
    def _floor_under_ceiling(self) -> Limit:
        if self.ceiling is None or type(self.floor) is not type(self.ceiling):
            return self
        if self.floor > self.ceiling:
            msg = f"floor {self.floor} is above ceiling {self.ceiling}; lower the floor"
            raise ValueError(msg)
        return self


DEFAULT_SECTION_ORDER = (
    SectionName.SYSTEM,
    SectionName.MEMORY,
    SectionName.EXAMPLES,
    SectionName.DOCUMENTS,
    SectionName.TOOL_OUTPUTS,
    SectionName.EVIDENCE,
    SectionName.CONVERSATION,
    SectionName.QUESTION,
)
DEFAULT_FILL_ORDER = (
    SectionName.CONVERSATION,
    SectionName.MEMORY,
    SectionName.TOOL_OUTPUTS,
    SectionName.EVIDENCE,
    SectionName.DOCUMENTS,
    SectionName.EXAMPLES,
)
_FILLABLE = frozenset(DEFAULT_FILL_ORDER)


class Prompt(_Section):
    """The whole prompt: the order of its sections, their token limits, and who is trusted.

    ``order`` lists every section once, ``system`` (if present) first and ``question`` last;
    context sections between two conversation parts are rendered as one message of
    ``context_role``. ``fill`` is the order in which sections get the budget left after the
    required parts and every section's floor.
    """

    order: tuple[SectionName, ...] = DEFAULT_SECTION_ORDER
    fill: tuple[SectionName, ...] = DEFAULT_FILL_ORDER
    limits: dict[SectionName, Limit] = Field(default_factory=dict)
    context_role: Literal["user", "system"] = "user"
    trusted_kinds: tuple[ItemKind, ...] = ()

    @model_validator(mode="after")
    def _complete_orders(self) -> Prompt:
        order = list(self.order)
        missing = [s.value for s in DEFAULT_SECTION_ORDER if s not in order]
        repeated = sorted({s.value for s in order if order.count(s) > 1})
        if missing or repeated:
            msg = (
                f"order must list every section once (missing: {', '.join(missing) or '-'}; "
                f"repeated: {', '.join(repeated) or '-'}); the sections are "
                f"{', '.join(s.value for s in DEFAULT_SECTION_ORDER)}"
            )
            raise ValueError(msg)
        if order[-1] is not SectionName.QUESTION or order[0] is not SectionName.SYSTEM:
            msg = "order must start with system and end with question (the model answers it)"
            raise ValueError(msg)
        fill = list(self.fill)
        wrong = [s.value for s in fill if s not in _FILLABLE]
        if wrong or sorted(fill) != sorted(_FILLABLE):
            msg = (
                f"fill must list each of {', '.join(s.value for s in DEFAULT_FILL_ORDER)} once "
                f"(system and question are required, not filled); got {', '.join(fill)}"
            )
            raise ValueError(msg)
        fixed = [s.value for s in self.limits if s not in _FILLABLE]
        if fixed:
            msg = f"limits for {', '.join(fixed)}: these sections are required, not filled"
            raise ValueError(msg)
        return self


class ConversationRetrieval(_Section):
    """How the retrieval query is built from the conversation (no LLM, deterministic).

    The last user turn always counts; ``previous_user_turns`` earlier user turns (newest
    first) are added, the k-th with BM25 weight ``decay ** k``; ``first_user_turn`` also adds
    the conversation's first user turn (the task). The dense leg embeds the combined text.
    """

    previous_user_turns: Annotated[int, Field(ge=0, le=20)] = 2
    decay: Annotated[float, Field(gt=0, le=1)] = 0.5
    first_user_turn: bool = False


class Conversation(_Section):
    """The turns before the final user turn: which are kept and how retrieval uses them.

    A turn is a user message and the assistant and tool messages after it; a turn is kept or
    dropped whole, so a tool call is never split from its result and the history always starts
    on a user turn. The final user turn is never dropped.
    """

    keep_last_turns: Annotated[int, Field(ge=0)] | None = None  # None: as many as fit
    keep_first_user_turn: bool = False
    retrieval: ConversationRetrieval = Field(default_factory=ConversationRetrieval)


class ToolOutputs(_Section):
    """Tool outputs (tool messages and ``tool_output`` items): untrusted, trimmed when long.

    An output over ``max_tokens`` (or over the room left in its section) keeps a head and a
    tail, ``head_share`` of the room going to the head, with a marker naming what was cut.
    """

    max_tokens: Annotated[int, Field(ge=16)] = 2000
    head_share: Annotated[float, Field(ge=0, le=1)] = 0.7
    min_tokens: Annotated[int, Field(ge=8)] = 48


class RedactPattern(_Section):
    """A custom redaction: ``pattern`` (RE2) replaced by ``[NAME]``."""

    name: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")]
    pattern: Regex

    @cached_property
    def compiled(self) -> LinearPattern:
        """``pattern`` compiled with RE2 (it was checked at load)."""
        return compile_pattern(self.pattern)


class Redact(_Rule):
    """What the model must not see even when the text is packed: typed placeholders.

    Applies to every untrusted kind (retrieved chunks, memory, tool outputs, documents,
    examples) before counting; per-rule counts go to the trace.
    """

    emails: bool = False
    phones: bool = False
    secrets: bool = False
    patterns: tuple[RedactPattern, ...] = ()


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
    versions: Versions = Field(default_factory=Versions)
    redact: Redact = Field(default_factory=Redact)
    prompt: Prompt = Field(default_factory=Prompt)
    conversation: Conversation = Field(default_factory=Conversation)
    tool_outputs: ToolOutputs = Field(default_factory=ToolOutputs)

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
