"""Access and request filters, built in one place and applied inside Qdrant on both legs.

``access_filter`` is the one function that decides what a principal may see: its tenant, and
documents in one of its groups or marked public. Request filters (sources, tags, excluded ids,
a date range) only ever narrow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from index.errors import InvalidInputError
from index.schema import PUBLIC_GROUP, DateRange, Filter, MatchAny, MatchValue, matches


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a tenant and its access groups (from an API key, never a request body)."""

    tenant: str
    groups: tuple[str, ...] = ()
    name: str = ""

    def narrowed(self, groups: tuple[str, ...] | None) -> Principal:
        """The same principal limited to ``groups``; asking for a group it lacks is an error."""
        if groups is None:
            return self
        extra = sorted(set(groups) - set(self.groups) - {PUBLIC_GROUP})
        if extra:
            raise InvalidInputError(
                f"groups {extra} are not granted to this key (granted: {sorted(self.groups)}); "
                "a request may narrow its groups, never widen them",
                field="groups",
                value=list(groups),
            )
        return Principal(tenant=self.tenant, groups=tuple(groups), name=self.name)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Optional narrowing a request may ask for."""

    sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_doc_ids: tuple[str, ...] = ()
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> SearchFilters:
        """Build from a JSON-like mapping; a wrong type or a bad date names the field."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidInputError(
                f"filters must be an object, got {type(raw).__name__}", field="filters", value=raw
            )
        allowed = {
            "sources",
            "exclude_sources",
            "tags",
            "exclude_doc_ids",
            "updated_after",
            "updated_before",
        }
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise InvalidInputError(
                f"unknown filter field(s) {unknown}; allowed: {sorted(allowed)}",
                field=f"filters.{unknown[0]}",
                value=unknown,
            )
        after, before = _date(raw, "updated_after"), _date(raw, "updated_before")
        if after is not None and before is not None and after > before:
            raise InvalidInputError(
                f"filters.updated_after ({after.isoformat()}) is later than "
                f"filters.updated_before ({before.isoformat()}); swap or widen them",
                field="filters.updated_after",
                value=raw.get("updated_after"),
            )
        return cls(
            sources=_strings(raw, "sources"),
            exclude_sources=_strings(raw, "exclude_sources"),
            tags=_strings(raw, "tags"),
            exclude_doc_ids=_strings(raw, "exclude_doc_ids"),
            updated_after=after,
            updated_before=before,
        )


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(
            f"filters.{key} must be a list of strings, got {value!r}",
            field=f"filters.{key}",
            value=value,
        )
    return tuple(value)


def _date(raw: Mapping[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as err:
            raise InvalidInputError(
                f"filters.{key} is not an ISO 8601 date: {value!r}; use e.g. 2026-01-01T00:00:00Z",
                field=f"filters.{key}",
                value=value,
            ) from err
    else:
        raise InvalidInputError(
            f"filters.{key} must be an ISO 8601 string, got {value!r}",
            field=f"filters.{key}",
            value=value,
        )
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def access_filter(principal: Principal, filters: SearchFilters = SearchFilters()) -> Filter:
    """The filter every query carries: access conditions first, then the request's narrowing."""
    must: list[Any] = [
        MatchValue("tenant", principal.tenant),
        MatchAny("groups", (*principal.groups, PUBLIC_GROUP)),
    ]
    must_not: list[Any] = []
    if filters.sources:
        must.append(MatchAny("source", filters.sources))
    if filters.tags:
        must.append(MatchAny("tags", filters.tags))
    if filters.updated_after or filters.updated_before:
        must.append(DateRange("updated_at", gte=filters.updated_after, lte=filters.updated_before))
    if filters.exclude_doc_ids:
        must_not.append(MatchAny("doc_id", filters.exclude_doc_ids))
    if filters.exclude_sources:
        must_not.append(MatchAny("source", filters.exclude_sources))
    return Filter(must=tuple(must), must_not=tuple(must_not))


@lru_cache(maxsize=256)
def second_lock(principal: Principal) -> Filter:
    """Tenant and groups only: what the principal may see, whatever the request narrowed.

    Also the BM25 IDF corpus, so documents outside it never shift the caller's scores.
    Built once per principal, not once per point.
    """
    return Filter(
        must=(
            MatchValue("tenant", principal.tenant),
            MatchAny("groups", (*principal.groups, PUBLIC_GROUP)),
        )
    )


def may_see(principal: Principal, payload: Mapping[str, Any]) -> bool:
    """The second lock, in Python, behind the store's filter: tenant and groups only."""
    return matches(second_lock(principal), payload)
