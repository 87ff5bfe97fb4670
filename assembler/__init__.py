"""The context assembler: ranked candidates in, a packed, cited context out.

A pure function of candidates, policy, budget, token counter and clock; it knows nothing of
Qdrant or models. Load policies with :mod:`assembler.policy`; count tokens with
:func:`tiktoken_counter`.

Example:
    >>> from assembler import assemble, tiktoken_counter
    >>> from assembler.policy import load_policy
    >>> pack = assemble(candidates,
    ...                 policy=load_policy("data/policies/default.yaml").policy,
    ...                 budget=1024, counter=tiktoken_counter("cl100k_base"),
    ...                 now=datetime.now(UTC))
"""

from __future__ import annotations

from assembler.pipeline import assemble
from assembler.policy_schema import Policy
from assembler.tokens import TokenCounter, tiktoken_counter
from assembler.types import (
    Citation,
    CitationFormat,
    ContextItem,
    ContextPack,
    Dropped,
    DropReason,
    InjectionAction,
    OrderMode,
    PolicyIdentity,
    StepTrace,
)

__all__ = [
    "Citation",
    "CitationFormat",
    "ContextItem",
    "ContextPack",
    "DropReason",
    "Dropped",
    "InjectionAction",
    "OrderMode",
    "Policy",
    "PolicyIdentity",
    "StepTrace",
    "TokenCounter",
    "assemble",
    "tiktoken_counter",
]
