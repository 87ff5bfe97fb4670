"""LangChain adapter (extra ``ragctx[langchain]``): a retriever over a ragctx server.

Example::

    from ragctx.client import RagctxClient
    from ragctx.items import ContextOptions
    from ragctx.langchain import RagctxRetriever

    retriever = RagctxRetriever(
        client=RagctxClient("http://127.0.0.1:8000", api_key="rgx_..."),
        options=ContextOptions(budget_tokens=1500),
    )
    docs = retriever.invoke("How do I rotate an API key?")
"""

from __future__ import annotations

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from ragctx.client import AsyncRagctxClient, ContextResponse, RagctxClient
from ragctx.items import ContextOptions, item_metadata

__all__ = ["RagctxRetriever", "documents_of"]


def documents_of(answer: ContextResponse) -> list[Document]:
    """The packed items of an answer as documents, in the answer's order, with their metadata."""
    return [
        Document(id=item.chunk_id, page_content=item.text, metadata=item_metadata(item, answer))
        for item in answer.items
    ]


class RagctxRetriever(BaseRetriever):
    """A LangChain retriever whose documents are the packed, cited items of ``/v1/context``.

    Attributes:
        client: the sync client (``invoke``).
        options: budget, policy, collection and narrowing of every request.
        async_client: the async client (``ainvoke``); without it LangChain runs ``invoke`` in
            a worker thread.
    """

    client: RagctxClient
    options: ContextOptions
    async_client: AsyncRagctxClient | None = None

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,  # noqa: ARG002 - LangChain's signature
    ) -> list[Document]:
        return documents_of(self.client.context(self.options.request(query)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.async_client is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        return documents_of(await self.async_client.context(self.options.request(query)))
