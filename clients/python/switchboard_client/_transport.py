"""HTTP transport of the generated Switchboard client: standard library only (urllib, json, asyncio).

Copied verbatim into every generated Python client by `npm run sdk`; edit it in the Switchboard
repository (src/sdkgen/runtime/_transport.py), not in a generated copy.
"""
from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """Every non-2xx answer, in the API's error shape ``{"error": {"code", "message", "details?"}}``.

    A body that is not in that shape (a proxy's HTML page, an empty 502) still becomes one, with
    ``code`` ``http_<status>``; a request that got no answer at all has ``status`` 0 and ``code``
    ``connection_error``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: Optional[int] = None,
    ) -> None:
        super().__init__("%s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    @classmethod
    def from_body(cls, status: int, raw: bytes, retry_after: Optional[str] = None) -> "ApiError":
        seconds: Optional[int] = None
        if retry_after is not None and retry_after.strip().isdigit():
            seconds = int(retry_after.strip())
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            message = error.get("message")
            return cls(
                status,
                error["code"],
                message if isinstance(message, str) else error["code"],
                error.get("details"),
                seconds,
            )
        return cls(status, "http_%d" % status, text[:200] or "HTTP %d" % status, None, seconds)


class ServerSentEvent(dict):
    """One server-sent event: ``event`` (name), ``id`` (or None) and ``data`` (parsed JSON, else text).

    A dict, so ``json.dumps`` works on it; the keys are also attributes.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _event(name: str, event_id: Optional[str], lines: List[str]) -> ServerSentEvent:
    text = "\n".join(lines)
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = text
    return ServerSentEvent(event=name, id=event_id, data=data)


class EventStream:
    """An open ``text/event-stream`` response: iterate it for :class:`ServerSentEvent` items.

    The stream ends when the server closes it; ``close()`` (or leaving a ``with`` block) stops
    reading early. ``headers`` holds the response headers (e.g. ``X-Execution-Id``).
    """

    def __init__(self, response: Any) -> None:
        self._response = response
        self.headers: Dict[str, str] = {k.lower(): v for k, v in response.headers.items()}
        self.last_event_id: Optional[str] = None

    def __iter__(self) -> Iterator[ServerSentEvent]:
        name, event_id, lines = "message", None, []  # type: str, Optional[str], List[str]
        try:
            while True:
                raw = self._response.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line == "":
                    if lines:
                        if event_id is not None:
                            self.last_event_id = event_id
                        yield _event(name, event_id, lines)
                    name, event_id, lines = "message", None, []
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    lines.append(value)
                elif field == "event":
                    name = value
                elif field == "id":
                    event_id = value
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._response.close()
        except Exception:  # pragma: no cover - closing a dead socket
            pass

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_DONE = object()


class AsyncEventStream:
    """The asyncio view of :class:`EventStream`: ``async for event in client.x.stream(...)``.

    The request is sent on the first ``__anext__`` (or on ``async with``), in the loop's default
    executor, and every read runs there too, so the event loop never blocks. ``await`` on it opens
    it and gives it back, for code that awaited the call.
    """

    def __init__(self, opener: Any) -> None:
        self._opener = opener
        self._stream: Optional[EventStream] = None
        self._iterator: Optional[Iterator[ServerSentEvent]] = None
        self._closed = False

    @property
    def headers(self) -> Dict[str, str]:
        """The response headers once the stream is open (empty before)."""
        return self._stream.headers if self._stream is not None else {}

    @property
    def last_event_id(self) -> Optional[str]:
        return self._stream.last_event_id if self._stream is not None else None

    async def _open(self) -> EventStream:
        if self._stream is None:
            self._stream = await asyncio.get_running_loop().run_in_executor(None, self._opener)
            self._iterator = iter(self._stream)
            if self._closed:
                self._stream.close()
        return self._stream

    def __await__(self) -> Any:
        async def opened() -> "AsyncEventStream":
            await self._open()
            return self

        return opened().__await__()

    def __aiter__(self) -> "AsyncEventStream":
        return self

    def _next(self) -> Any:
        return next(self._iterator, _DONE) if self._iterator is not None else _DONE

    async def __anext__(self) -> ServerSentEvent:
        if self._closed:
            raise StopAsyncIteration
        await self._open()
        item = await asyncio.get_running_loop().run_in_executor(None, self._next)
        if item is _DONE:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.close()

    async def __aenter__(self) -> "AsyncEventStream":
        await self._open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _query_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _multipart(files: Sequence[Sequence[Any]]) -> Tuple[bytes, str]:
    """The files ``(name, bytes[, content type])`` as a multipart/form-data body, one ``file`` part each, and its content type."""
    boundary = "----switchboard" + uuid.uuid4().hex
    parts: List[bytes] = []
    for file in files:
        name, content = str(file[0]), bytes(file[1])
        kind = str(file[2]) if len(file) > 2 and file[2] else "application/octet-stream"
        quoted = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = 'Content-Disposition: form-data; name="file"; filename="%s"\r\nContent-Type: %s\r\n\r\n' % (quoted, kind)
        parts.append(("--%s\r\n" % boundary).encode("utf-8") + head.encode("utf-8") + content + b"\r\n")
    return b"".join(parts) + ("--%s--\r\n" % boundary).encode("utf-8"), "multipart/form-data; boundary=" + boundary


class Transport:
    """Sends one request to ``<base_url>/api/v1<path>`` and decodes the answer.

    Holds the access token: the auth calls that answer with ``accessToken`` store it here, and
    every later request sends it as ``Authorization: Bearer``. Without one, an API key
    (``sb_live_…``, for programs) is sent as ``X-API-Key``.
    """

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        timeout: float = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        api_key: Optional[str] = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.api_key = api_key
        self.refresh_token: Optional[str] = None
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._lock = threading.Lock()

    def url(self, path: str, path_params: Mapping[str, Any], query: Mapping[str, Any]) -> str:
        for name, value in path_params.items():
            path = path.replace("{%s}" % name, urllib.parse.quote(str(value), safe=""))
        pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
        return self.base_url + API_PREFIX + path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")

    def remember(self, result: Any) -> None:
        """Keeps the tokens of an auth answer (register, login, refresh)."""
        if isinstance(result, dict) and isinstance(result.get("accessToken"), str):
            with self._lock:
                self.token = result["accessToken"]
                if isinstance(result.get("refreshToken"), str):
                    self.refresh_token = result["refreshToken"]

    def request(
        self,
        method: str,
        path: str,
        path_params: Optional[Mapping[str, Any]] = None,
        query: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        has_body: bool = False,
        stream: bool = False,
        files: Optional[Sequence[Sequence[Any]]] = None,
    ) -> Any:
        """Sends the request; returns parsed JSON, text, None (no content) or an :class:`EventStream`."""
        url = self.url(path, path_params or {}, query or {})
        sent: Dict[str, str] = {"Accept": "text/event-stream" if stream else "application/json"}
        sent.update(self.headers)
        if self.token:
            sent["Authorization"] = "Bearer " + self.token
        elif self.api_key:
            sent["X-API-Key"] = self.api_key
        for name, value in (headers or {}).items():
            if value is not None:
                sent[name] = str(value)
        data = None
        if files is not None:
            data, sent["Content-Type"] = _multipart(files)
        elif has_body:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=sent, method=method)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read() if error.fp is not None else b""
            retry_after = error.headers.get("Retry-After") if error.headers else None
            error.close()
            raise ApiError.from_body(error.code, raw, retry_after) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(0, "connection_error", str(reason)) from None
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if stream or content_type == "text/event-stream":
            return EventStream(response)
        with response:
            raw = response.read()
        if not raw:
            return None
        if content_type == "application/json" or content_type.endswith("+json"):
            return json.loads(raw.decode("utf-8"))
        return raw.decode("utf-8", "replace")

    async def arequest(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`request` run in the loop's default executor, so it never blocks the event loop."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, lambda: self.request(*args, **kwargs))
        if isinstance(result, EventStream):
            return AsyncEventStream(lambda: result)
        return result

    def astream(self, *args: Any, **kwargs: Any) -> AsyncEventStream:
        """An :class:`AsyncEventStream` that sends the request (:meth:`request`) when first iterated."""
        return AsyncEventStream(lambda: self.request(*args, **kwargs))
