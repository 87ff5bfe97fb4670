"""Access and request filters, built in one place and applied inside Qdrant on both legs.

``access_filter`` is the one function that decides what a principal may see: its tenant, and
documents in one of its groups or marked public. Request filters (sources, tags, excluded ids,
a date range) only ever narrow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from core.types import PUBLIC_GROUP, Principal, SearchFilters
from index.payload import DOC_ID, GROUPS, SOURCE, TAGS, TENANT, UPDATED_AT
from index.schema import DateRange, Filter, MatchAny, MatchValue, matches


def access_filter(principal: Principal, filters: SearchFilters = SearchFilters()) -> Filter:
    """The filter every query carries: access conditions first, then the request's narrowing."""
    must: list[Any] = [
        MatchValue(TENANT, principal.tenant),
        MatchAny(GROUPS, (*principal.groups, PUBLIC_GROUP)),
    ]
    must_not: list[Any] = []
    if filters.sources:
        must.append(MatchAny(SOURCE, filters.sources))
    if filters.tags:
        must.append(MatchAny(TAGS, filters.tags))
    if filters.updated_after or filters.updated_before:
        must.append(DateRange(UPDATED_AT, gte=filters.updated_after, lte=filters.updated_before))
    if filters.exclude_doc_ids:
        must_not.append(MatchAny(DOC_ID, filters.exclude_doc_ids))
    if filters.exclude_sources:
        must_not.append(MatchAny(SOURCE, filters.exclude_sources))
    return Filter(must=tuple(must), must_not=tuple(must_not))


@lru_cache(maxsize=256)
def second_lock(principal: Principal) -> Filter:
    """Tenant and groups only: what the principal may see, whatever the request narrowed.

    Also the BM25 IDF corpus, so documents outside it never shift the caller's scores.
    Built once per principal, not once per point.
    """
    return Filter(
        must=(
            MatchValue(TENANT, principal.tenant),
            MatchAny(GROUPS, (*principal.groups, PUBLIC_GROUP)),
        )
    )


def may_see(principal: Principal, payload: Mapping[str, Any]) -> bool:
    """The second lock, in Python, behind the store's filter: tenant and groups only."""
    return matches(second_lock(principal), payload)
