"""A typed Python client for the ragctx HTTP API, sync (:class:`RagctxClient`) and async
(:class:`AsyncRagctxClient`).

Requests and answers are the server's own pydantic models (``service.api.schemas``), so the
client cannot drift from the contract. A 503 (overloaded, or the server still loading its
models) is retried with exponential backoff, waiting at least what ``Retry-After`` asks; so is a
refused connection. Any other error answer raises :class:`ApiError` with the API's error body
and the request's trace id.

Example::

    from ragctx.client import ContextRequest, RagctxClient

    with RagctxClient("http://127.0.0.1:8000", api_key="rgx_...") as client:
        answer = client.context(ContextRequest(query="How do I rotate a key?", budget_tokens=1500))
    print(answer.context, answer.trace.trace_id)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from core.errors import InvalidInputError, RagctxError
from service.api.schemas import ContextRequest, ContextResponse, FiltersIn, ItemIn, MessageIn

__all__ = [
    "ApiError",
    "AsyncRagctxClient",
    "ConnectionFailedError",
    "ContextRequest",
    "ContextResponse",
    "FiltersIn",
    "ItemIn",
    "MessageIn",
    "RagctxClient",
    "RetryPolicy",
    "ServerBusyError",
]

CONTEXT_PATH = "/v1/context"


class ApiError(RagctxError):
    """The server answered with an error: its status, the API's error body and the trace id."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        trace_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"ragctx answered {status} {code}{where}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors or []
        self.trace_id = trace_id
        self.retry_after = retry_after


class ServerBusyError(ApiError):
    """503: the server is overloaded or still starting; retried, raised when retries run out."""


class ConnectionFailedError(RagctxError):
    """No answer: the server could not be reached, or did not answer within the timeout."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a 503 or a refused connection.

    Attributes:
        attempts: tries in all, the first included (1: never retry).
        backoff_s: the first wait; it doubles each retry, with jitter, up to ``max_wait_s``.
        max_wait_s: the longest wait between two tries, also for a longer ``Retry-After``.
    """

    attempts: int = 4
    backoff_s: float = 0.25
    max_wait_s: float = 10.0

    def tenacity_arguments(self) -> dict[str, Any]:
        """Arguments of tenacity's ``Retrying``/``AsyncRetrying`` for this policy."""
        backoff = wait_exponential_jitter(initial=self.backoff_s, max=self.max_wait_s)

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome is not None else None
            base = backoff(state)
            if isinstance(err, ServerBusyError) and err.retry_after is not None:
                return min(max(err.retry_after, base), self.max_wait_s)
            return base

        return {
            "stop": stop_after_attempt(max(1, self.attempts)),
            "wait": wait,
            "retry": retry_if_exception_type((ServerBusyError, _Refused)),
            "reraise": True,
        }


class _Refused(ConnectionFailedError):
    """The connection was refused or reset before a request was sent: safe to retry."""


def _headers(api_key: str) -> dict[str, str]:
    if not api_key:
        raise InvalidInputError(
            "api_key is empty; pass a key from `ragctx keys add`", field="api_key"
        )
    return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}


def _body(request: ContextRequest) -> dict[str, Any]:
    return request.model_dump(mode="json", exclude_unset=True)


def _answer(response: httpx.Response) -> ContextResponse:
    """The typed answer, or the API's error as an exception."""
    trace_id = response.headers.get("x-trace-id")
    if response.status_code == 200:
        try:
            return ContextResponse.model_validate_json(response.content)
        except ValidationError as err:
            raise ApiError(
                200,
                "bad_response",
                f"the answer does not match this client's ContextResponse ({err.error_count()} "
                "problems); is the server a ragctx of another API version?",
                trace_id=trace_id,
            ) from err
    raise _error(response, trace_id)


def _error(response: httpx.Response, trace_id: str | None) -> ApiError:
    body: Mapping[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            body = parsed
    except ValueError:
        pass
    detail = body.get("error", {})
    code = str(detail.get("code") or f"http_{response.status_code}")
    message = str(detail.get("message") or response.text[:200] or response.reason_phrase)
    retry_after = _retry_after(response.headers.get("retry-after"))
    cls = ServerBusyError if response.status_code == 503 else ApiError
    return cls(
        response.status_code,
        code,
        message,
        field=detail.get("field"),
        errors=body.get("errors"),
        trace_id=trace_id,
        retry_after=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    # the server sends delay-seconds; an HTTP-date (from a proxy) falls back to the backoff
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _transport_error(err: httpx.TransportError, url: str) -> ConnectionFailedError:
    if isinstance(err, httpx.ConnectError):
        return _Refused(f"could not connect to ragctx at {url} ({err}); is `ragctx serve` running?")
    if isinstance(err, httpx.TimeoutException):
        return ConnectionFailedError(
            f"ragctx at {url} did not answer in time ({type(err).__name__}); raise the "
            "client's timeout or ask for a smaller top_k or budget"
        )
    return ConnectionFailedError(f"the request to ragctx at {url} failed: {err!r}")


class RagctxClient:
    """Synchronous client of one ragctx server.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000``.
        api_key: the key the server's keys file knows; it decides tenant and groups.
        timeout: seconds for connecting and for the whole answer.
        retry: retries of 503s and refused connections.
        transport: an httpx transport (tests, proxies); default: a plain connection pool.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_headers(api_key),
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def context(self, request: ContextRequest) -> ContextResponse:
        """``POST /v1/context``: context for ``request.query`` packed into its budget.

        Raises:
            ApiError: a 4xx or 5xx answer (``ServerBusyError`` once 503 retries run out).
            ConnectionFailedError: the server was not reached or did not answer in time.
        """
        for attempt in Retrying(**self.retry.tenacity_arguments()):
            with attempt:
                return _answer(self._post(_body(request)))
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.post(CONTEXT_PATH, json=body)
        except httpx.TransportError as err:
            raise _transport_error(err, self.base_url) from err

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRagctxClient:
    """Asynchronous client of one ragctx server; the arguments are :class:`RagctxClient`'s."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(api_key),
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def context(self, request: ContextRequest) -> ContextResponse:
        """``POST /v1/context``; see :meth:`RagctxClient.context`."""
        async for attempt in AsyncRetrying(**self.retry.tenacity_arguments()):
            with attempt:
                return _answer(await self._post(_body(request)))
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self._http.post(CONTEXT_PATH, json=body)
        except httpx.TransportError as err:
            raise _transport_error(err, self.base_url) from err

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
