"""LlamaIndex adapters (extra ``ragctx[llamaindex]``): a retriever over a ragctx server, and a
node postprocessor that packs any node list into a token budget under a ragctx policy.

Example::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from ragctx.client import RagctxClient
    from ragctx.items import ContextOptions
    from ragctx.llamaindex import RagctxRetriever

    client = RagctxClient("http://127.0.0.1:8000", api_key="rgx_...")
    retriever = RagctxRetriever(client, options=ContextOptions(budget_tokens=1500))
    engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)
    print(engine.query("How do I rotate an API key?"))
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr

from core.errors import InvalidInputError
from ragctx.client import AsyncRagctxClient, ContextResponse, RagctxClient
from ragctx.items import LLM_METADATA_KEYS, ContextOptions, item_metadata

__all__ = ["RagctxPacker", "RagctxRetriever", "nodes_of"]


def nodes_of(answer: ContextResponse) -> list[NodeWithScore]:
    """The packed items of an answer as nodes, in the answer's order, with their metadata."""
    out = []
    for item in answer.items:
        metadata = item_metadata(item, answer)
        node = TextNode(
            id_=item.chunk_id,
            text=item.text,
            metadata=metadata,
            excluded_llm_metadata_keys=[k for k in metadata if k not in LLM_METADATA_KEYS],
            excluded_embed_metadata_keys=list(metadata),
        )
        out.append(NodeWithScore(node=node, score=item.score))
    return out


class RagctxRetriever(BaseRetriever):
    """A LlamaIndex retriever whose nodes are the packed, cited items of ``POST /v1/context``.

    The nodes already fit ``options.budget_tokens`` under the server's policy; the tenant and
    groups are the client's key's.

    Args:
        client: the sync client (``retrieve``).
        options: budget, policy, collection and narrowing of every request.
        async_client: the async client (``aretrieve``); without it ``aretrieve`` uses ``client``
            in a worker thread.
    """

    def __init__(
        self,
        client: RagctxClient,
        *,
        options: ContextOptions,
        async_client: AsyncRagctxClient | None = None,
    ) -> None:
        super().__init__(callback_manager=CallbackManager([]))
        self._client = client
        self._async_client = async_client
        self._options = options

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return nodes_of(self._client.context(self._options.request(query_bundle.query_str)))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if self._async_client is None:
            from anyio import to_thread

            return await to_thread.run_sync(self._retrieve, query_bundle)
        request = self._options.request(query_bundle.query_str)
        return nodes_of(await self._async_client.context(request))


class RagctxPacker(BaseNodePostprocessor):
    """Packs nodes from any retriever into a token budget under a ragctx policy, locally.

    The policy's rules run as in the server (exclude, freshness, priority, injection screen,
    near-duplicates, packing, order); the nodes that fit come back in the policy's order with
    ``citation`` in their metadata, the rest are left out. Node metadata ``doc_id``, ``source``,
    ``title``, ``path`` and ``updated_at`` (ISO 8601) are used when present. A node without a
    score counts as score 0.

    Raises:
        PolicyError: the policy file is missing or invalid.
        InvalidInputError: a budget below 1 or an unknown encoding.

    Args:
        policy: a policy YAML file (see docs/policy.md).
        budget_tokens: tokens the packed context may use, citation headers included.
        encoding: tiktoken encoding of the reader model.
    """

    budget_tokens: int
    encoding: str = "cl100k_base"
    _policy: Any = PrivateAttr()
    _counter: Any = PrivateAttr()

    def __init__(self, policy: str | Path, *, budget_tokens: int, encoding: str = "cl100k_base"):
        from assembler.policy import load_policy
        from assembler.tokens import tiktoken_counter

        if budget_tokens < 1:
            raise InvalidInputError(
                f"budget_tokens is {budget_tokens}; give the packer at least 1 token to fill",
                field="budget_tokens",
                value=budget_tokens,
            )
        # pydantic fields of this model; the base class's stub __init__ does not declare them
        super().__init__(budget_tokens=budget_tokens, encoding=encoding)  # type: ignore[call-arg]
        self._policy = load_policy(policy)
        self._counter = tiktoken_counter(encoding)

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's name of this component."""
        return "RagctxPacker"

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,  # noqa: ARG002 (LlamaIndex's signature)
    ) -> list[NodeWithScore]:
        from assembler import assemble

        by_id = {n.node.node_id: n for n in nodes}
        pack = assemble(
            [_candidate(n) for n in nodes],
            policy=self._policy.policy,
            budget=self.budget_tokens,
            counter=self._counter,
            now=datetime.now(UTC),
        )
        out = []
        for item in pack.items:
            original = by_id[item.chunk_id].node
            metadata = {**original.metadata, "citation": item.citation, "flags": list(item.flags)}
            node = TextNode(id_=item.chunk_id, text=item.text, metadata=metadata)
            out.append(NodeWithScore(node=node, score=item.score))
        return out


def _candidate(n: NodeWithScore) -> Any:
    from core.types import Candidate, ScoreKind

    meta = n.node.metadata
    updated = meta.get("updated_at")
    return Candidate(
        chunk_id=n.node.node_id,
        doc_id=str(meta.get("doc_id") or n.node.ref_doc_id or n.node.node_id),
        text=n.node.get_content(),
        score=0.0 if n.score is None else float(n.score),
        score_kind=ScoreKind.DENSE,
        tenant="",  # the nodes are the caller's already; no access rule applies locally
        source=str(meta.get("source", "")),
        path=str(meta.get("path", "")),
        title=str(meta.get("title", "")),
        updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
    )
