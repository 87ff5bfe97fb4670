"""Client-side integrations of ragctx: the HTTP client and the framework adapters.

``ragctx.client`` needs only httpx and pydantic (it shares the server's request and response
models, which import nothing heavier); ``ragctx.llamaindex`` and ``ragctx.langchain`` need their
extras (``ragctx[llamaindex]``, ``ragctx[langchain]``).
"""
