"""``editrl reward serve``: score (source, instruction, edit) triples over HTTP.

One process holds one reward (any ``RewardFunction``) and a dynamic batcher: every request's items go
into one bounded asyncio queue, and a single worker thread scores up to ``max_batch`` queued items at
a time, waiting at most ``max_wait_ms`` for a batch to fill. Concurrent small requests therefore share
forward passes, and the model is only ever touched by one thread. The service is stateless, so
replicas can sit behind any HTTP load balancer.

Wire format (JSON only, never pickle): ``POST /v1/score`` with
``{"items": [{"source": IMG, "instruction": "...", "edit": IMG}, ...]}`` where IMG is a base64 PNG,
JPEG or WebP (optionally a ``data:`` URL) or ``{"path": "..."}`` naming a file under ``--image-root``.
The answer lists ``score``, ``score_sigma`` and per-dimension ``mu``/``sigma`` per item, in order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import secrets
import socket
import threading
import time
import warnings
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from ..errors import EditRLError
from ..images import ImageTooLarge, check_shape, instruction_problem, open_image
from .identity import reward_identity
from .output import RewardFunction, RewardOutput
from .serve_config import ServeConfig
from .wire import IMAGE_FORMATS, output_to_response

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- wire format


class ImagePath(BaseModel):
    """An image file on the server, relative to (or inside) ``--image-root``."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)


ImageField = Union[str, ImagePath]


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: ImageField = Field(description="base64 PNG/JPEG/WebP (or data: URL), or {'path': ...} under --image-root")
    instruction: str = Field(max_length=8192)
    edit: ImageField = Field(description="the edited image, same encodings as source")

    @field_validator("instruction", mode="before")
    @classmethod
    def _instruction(cls, value):
        """The library's own check (empty, not text, lone surrogates), before pydantic's: 422 naming the field."""
        problem = instruction_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ScoreItem] = Field(min_length=1)


class ScoreResult(BaseModel):
    score: float
    score_sigma: float
    mu: list[float] = Field(description="per-dimension mean, in the order of `dimensions`")
    sigma: list[float] = Field(description="per-dimension sigma, in the order of `dimensions`")


class ScoreResponse(BaseModel):
    dimensions: list[str]
    results: list[ScoreResult]


# ---------------------------------------------------------------- image decoding


def _path_under_root(path: str, root: str | None, name: str, max_bytes: int) -> Path:
    """The file a ``{"path": ...}`` names, refused unless it lies under the root and is at most ``max_bytes``."""
    if root is None:
        raise HTTPException(403, f"{name}: image paths are disabled on this server (start it with --image-root DIR), send base64 instead")
    if "\x00" in path:
        raise HTTPException(400, f"{name}: path contains a NUL byte")
    base = Path(root).resolve()
    # resolve() follows symlinks and '..', so anything that lands outside the root is refused
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise HTTPException(403, f"{name}: path {path!r} is outside the server's image root")
    if not target.is_file():
        raise HTTPException(400, f"{name}: no image file at {path!r} under the server's image root")
    size = target.stat().st_size
    if size > max_bytes:
        raise HTTPException(413, f"{name}: the file {path!r} has {size} bytes, over the server's limit of {max_bytes} bytes")
    return target


def _b64decode(value: str, name: str) -> bytes:
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, f"{name}: not valid base64 (expected a base64 PNG/JPEG/WebP string or {{'path': ...}})") from None


def _image_source(value: ImageField, name: str, config: ServeConfig):
    """A path under the root or an in-memory file of the decoded base64."""
    if isinstance(value, ImagePath):
        return _path_under_root(value.path, config.image_root, name, config.max_request_bytes)
    return io.BytesIO(_b64decode(value, name))


def image_pixels(value: ImageField, name: str, config: ServeConfig) -> int:
    """Declared width x height from the image header (nothing decoded); 413 over ``max_image_pixels``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(_image_source(value, name, config), formats=IMAGE_FORMATS) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        raise HTTPException(413, f"{name}: the image declares over {2 * Image.MAX_IMAGE_PIXELS} pixels, over the server's limit of "
                                 f"{config.max_image_pixels} pixels (--max-image-pixels)") from None
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - any header PIL cannot read
        raise HTTPException(400, f"{name}: not a readable {'/'.join(IMAGE_FORMATS)} image") from None
    if width * height > config.max_image_pixels:
        raise HTTPException(413, f"{name}: {width}x{height} image exceeds the server's limit of {config.max_image_pixels} pixels (--max-image-pixels)")
    try:
        check_shape(width, height, name)
    except EditRLError as err:
        raise HTTPException(400, str(err)) from None
    return width * height


def decode_image(value: ImageField, name: str, config: ServeConfig) -> Image.Image:
    """Bytes or server path -> decoded image in its own mode (the reward converts it to RGB its own way,
    so a served EditReward scores exactly as in process), size checked before decoding."""
    source = _image_source(value, name, config)
    try:
        return open_image(source, name, config.max_image_pixels, IMAGE_FORMATS)
    except ImageTooLarge as err:
        raise HTTPException(413, str(err)) from None
    except EditRLError as err:
        raise HTTPException(400, str(err)) from None
    finally:
        if isinstance(source, io.BytesIO):
            source.close()  # frees the encoded bytes, which a decoded PNG would keep alive (PIL keeps its file object)


def request_pixels(request: ScoreRequest, config: ServeConfig) -> int:
    """Declared pixels of every image of the request (headers only); 400/413 for a bad or oversize one."""
    total = 0
    for i, item in enumerate(request.items):
        total += image_pixels(item.source, f"items[{i}].source", config) + image_pixels(item.edit, f"items[{i}].edit", config)
    return total


async def read_request(http: Request) -> ScoreRequest:
    """The body, parsed and validated here rather than by FastAPI, which would hold the raw body and its parsed
    JSON until the answer: with ``decode_request`` dropping each item's encoded images once decoded, a request
    waiting to be scored holds its images once (``ServeConfig.max_pixels_in_flight``), not three more times."""
    raw = bytearray()
    async for chunk in http.stream():
        raw += chunk
    try:
        data = json.loads(raw)
    except ValueError as err:  # JSONDecodeError, or bytes in no Unicode encoding
        raise RequestValidationError([{"loc": ("body",), "msg": f"not valid JSON ({err})", "type": "json_invalid"}]) from None
    del raw
    try:
        return ScoreRequest.model_validate(data)
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None


def decode_request(request: ScoreRequest, config: ServeConfig) -> tuple[list, list[str], list]:
    """The request's images decoded, in order; each item leaves ``request`` once decoded, so its encoded
    images (base64 strings) are freed as soon as the decoded ones exist."""
    sources, instructions, edits = [], [], []
    items, request.items = request.items, []
    for i in range(len(items)):
        item, items[i] = items[i], None
        instructions.append(item.instruction)
        sources.append(decode_image(item.source, f"items[{i}].source", config))
        edits.append(decode_image(item.edit, f"items[{i}].edit", config))
    return sources, instructions, edits


class PixelBudget:
    """Image pixels admitted at once (decoding, queued or being scored); only touched from the event loop."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        if pixels > self.limit:
            raise HTTPException(413, f"the request's images hold {pixels} pixels, over the server's limit of {self.limit} pixels "
                                     "in flight; split the request")
        if self.used + pixels > self.limit:
            raise HTTPException(503, "the server is busy decoding or scoring other images; retry later", headers={"Retry-After": "1"})
        self.used += pixels
        try:
            yield
        finally:
            self.used -= pixels


# ---------------------------------------------------------------- batching


class QueueFull(Exception):
    pass


@dataclass
class _Item:
    source: Image.Image
    instruction: str
    edit: Image.Image
    future: asyncio.Future


class Metrics:
    """Counters and a window of recent latencies; only touched from the event loop."""

    def __init__(self, window: int = 4096) -> None:
        self.requests = 0
        self.items = 0
        self.batches = 0
        self.batched_items = 0
        self.responses: Counter[int] = Counter()
        self.latencies: deque[float] = deque(maxlen=window)

    def snapshot(self, queue_depth: int) -> dict:
        lat = np.asarray(self.latencies, dtype=np.float64)
        quantiles = {f"p{q}": float(np.quantile(lat, q / 100)) if lat.size else None for q in (50, 90, 99)}
        return {
            "requests": self.requests,
            "items": self.items,
            "batches": self.batches,
            "mean_batch_size": self.batched_items / self.batches if self.batches else 0.0,
            "queue_depth": queue_depth,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "latency_seconds": quantiles,
        }


def prometheus_text(snapshot: dict) -> str:
    lines = [
        "# TYPE editrl_requests_total counter", f"editrl_requests_total {snapshot['requests']}",
        "# TYPE editrl_items_total counter", f"editrl_items_total {snapshot['items']}",
        "# TYPE editrl_batches_total counter", f"editrl_batches_total {snapshot['batches']}",
        "# TYPE editrl_mean_batch_size gauge", f"editrl_mean_batch_size {snapshot['mean_batch_size']}",
        "# TYPE editrl_queue_depth gauge", f"editrl_queue_depth {snapshot['queue_depth']}",
        "# TYPE editrl_responses_total counter",
        *(f'editrl_responses_total{{code="{code}"}} {n}' for code, n in snapshot["responses"].items()),
        "# TYPE editrl_request_latency_seconds summary",
        *(
            f'editrl_request_latency_seconds{{quantile="{int(q[1:]) / 100}"}} {v}'
            for q, v in snapshot["latency_seconds"].items()
            if v is not None
        ),
    ]
    return "\n".join(lines) + "\n"


class Batcher:
    """Feeds queued items to one worker thread in batches of at most ``max_batch``."""

    def __init__(self, reward: RewardFunction, config: ServeConfig, metrics: Metrics) -> None:
        self.reward, self.config, self.metrics = reward, config, metrics
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editrl-reward")
        self._task: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(HTTPException(503, "the reward server is shutting down"))
        self._executor.shutdown(wait=True)

    async def score(self, sources: list, instructions: list[str], edits: list) -> RewardOutput:
        if self._queue.qsize() + len(sources) > self.config.max_queue:
            raise QueueFull
        loop = asyncio.get_running_loop()
        items = [_Item(s, t, e, loop.create_future()) for s, t, e in zip(sources, instructions, edits)]
        for item in items:  # all-or-nothing: checked above, and nothing else runs between these puts
            self._queue.put_nowait(item)
        return RewardOutput.cat(await asyncio.gather(*(item.future for item in items)))

    async def _next_batch(self) -> list[_Item]:
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.config.max_wait_ms / 1000
        while len(batch) < self.config.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return [item for item in batch if not item.future.done()]  # drop items of disconnected clients

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            results = await loop.run_in_executor(self._executor, self._score_batch, batch)
            self.metrics.batches += 1
            self.metrics.batched_items += len(batch)
            for item, result in zip(batch, results):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

    def _score_batch(self, batch: list[_Item]) -> list[RewardOutput | BaseException]:
        """Runs in the worker thread. A failing batch is rescored item by item so one bad item
        fails only its own request."""
        try:
            out = self._score([i.source for i in batch], [i.instruction for i in batch], [i.edit for i in batch])
            return [out.select(k) for k in range(len(batch))]
        except Exception as err:  # noqa: BLE001 - isolated below
            if len(batch) == 1:
                return [_as_http_error(err)]
        results: list[RewardOutput | BaseException] = []
        for item in batch:
            try:
                results.append(self._score([item.source], [item.instruction], [item.edit]))
            except Exception as err:  # noqa: BLE001 - reported to that item's request
                results.append(_as_http_error(err))
        return results

    def _score(self, sources, instructions, edits) -> RewardOutput:
        return self.reward.score(sources, instructions, edits, batch_size=self.config.max_batch)


def _as_http_error(err: Exception) -> HTTPException:
    if isinstance(err, EditRLError):
        return HTTPException(400, str(err))
    logger.exception("reward scoring failed", exc_info=err)
    return HTTPException(500, f"the reward failed on this input: {type(err).__name__}: {err}")


# ---------------------------------------------------------------- the app


def _format_validation_error(err: RequestValidationError) -> str:
    """pydantic's errors as one line, e.g. ``items[0].extra: unknown field (not part of the request schema)``."""
    parts = []
    for e in err.errors():
        keys = list(e.get("loc", ()))
        if keys[:1] == ["body"]:
            keys = keys[1:]
        loc = ""
        for key in keys:
            loc += f"[{key}]" if isinstance(key, int) else (f".{key}" if loc else str(key))
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (not part of the request schema)"
        else:  # a validator's own message as written (pydantic prefixes "Value error, ")
            msg = str(e["ctx"]["error"]) if e.get("type") == "value_error" else e.get("msg", "")
        parts.append(f"{loc or 'body'}: {msg}")
    return "; ".join(parts)


PROTECTED = ("/v1/score", "/metrics", "/v1/chat/completions")  # paths that need the bearer token when the server has one


class Guard:
    """Pure ASGI middleware, in front of everything that reads a request: 401 for a missing or wrong
    token on ``PROTECTED`` paths (before the body is read or parsed), 413 for bodies over ``max_bytes``
    (at once from Content-Length, else while a chunked body streams in), 408 for a body not received
    within ``body_timeout`` seconds, and a count of the status codes of ``/v1/score`` (including 500s)."""

    def __init__(self, app, config: ServeConfig, metrics: Metrics) -> None:
        self.app, self.config, self.metrics = app, config, metrics
        self.max_bytes = config.max_request_bytes
        self.bytes_in_flight = 0

    def _error(self, size: str) -> HTTPException:
        return HTTPException(413, f"request body of {size} bytes exceeds the server's limit of {self.max_bytes} bytes")

    def _authorized(self, headers: dict) -> bool:
        if self.config.token is None:
            return True
        scheme, _, credentials = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(credentials.strip().encode(), self.config.token.encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seen = 0
        body_done = False
        deadline = time.monotonic() + self.config.body_timeout_s
        started = False

        async def limited_receive():
            nonlocal seen, body_done
            if body_done:
                return await receive()  # e.g. waiting for a disconnect: no deadline
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise HTTPException(408, f"the request body was not received within {self.config.body_timeout_s:g} s") from None
            seen += len(message.get("body", b""))
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if seen > self.max_bytes:
                raise self._error(f"more than {self.max_bytes}")  # FastAPI answers an HTTPException raised here
            return message

        async def counting_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if scope["path"] == "/v1/score":
                    self.metrics.responses[message["status"]] += 1
            await send(message)

        headers = dict(scope["headers"])
        if scope["path"] in PROTECTED and not self._authorized(headers):
            response = JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                                    content={"detail": "missing or wrong bearer token (send 'Authorization: Bearer <token>')"})
            return await response(scope, receive, counting_send)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse(status_code=413, content={"detail": self._error(length.decode()).detail})
            return await response(scope, receive, counting_send)
        declared = int(length) if length.isdigit() else 0
        if declared and self.bytes_in_flight + declared > self.config.max_bytes_in_flight:
            response = JSONResponse(status_code=503, headers={"Retry-After": "1"},
                                    content={"detail": "the server is busy receiving other requests; retry later"})
            return await response(scope, receive, counting_send)
        self.bytes_in_flight += declared
        try:
            await self.app(scope, limited_receive, counting_send)
        except Exception:
            if not started and scope["path"] == "/v1/score":
                self.metrics.responses[500] += 1  # Starlette's error middleware answers it outside this one
            raise
        finally:
            self.bytes_in_flight -= declared


def create_app(reward: RewardFunction, config: ServeConfig | None = None, chat=None) -> FastAPI:
    """The FastAPI app scoring with ``reward`` (and, given a ``chat`` model, answering the OpenAI chat protocol:
    ``editrl.reward.chat_api``); run it with uvicorn (see :func:`serve`)."""
    config = config or ServeConfig()
    metrics = Metrics()
    state: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher(reward, config, metrics)
        batcher.start()
        state["batcher"] = batcher
        yield
        await batcher.stop()

    app = FastAPI(
        title="editrl reward server",
        description="Scores (source, instruction, edit) triples with an EditReward-style reward; dynamic batching.",
        version="1",
        lifespan=lifespan,
    )
    identity = reward_identity(reward)
    budget = PixelBudget(config.max_pixels_in_flight)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _format_validation_error(err)})

    app.add_middleware(Guard, config=config, metrics=metrics)
    if chat is not None:
        from .chat_api import add_chat_routes

        add_chat_routes(app, chat, config)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": config.model_name, "max_batch": config.max_batch,
                "max_request_items": config.max_request_items, "max_image_pixels": config.max_image_pixels,
                "reward": identity}

    @app.get("/metrics", responses={401: {}})
    async def get_metrics(format: str = "json"):
        snapshot = metrics.snapshot(state["batcher"].depth)
        if format == "prometheus":
            return PlainTextResponse(prometheus_text(snapshot), media_type="text/plain; version=0.0.4")
        if format != "json":
            raise HTTPException(400, f"format: expected 'json' or 'prometheus', got {format!r}")
        return snapshot

    @app.post("/v1/score", response_model=ScoreResponse, responses={400: {}, 401: {}, 403: {}, 408: {}, 413: {}, 422: {}, 503: {}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/ScoreRequest"}}}}})
    async def score(http: Request) -> dict:
        start = time.perf_counter()
        request = await read_request(http)
        n = len(request.items)
        if n > config.max_request_items:
            raise HTTPException(413, f"items: {n} items exceed the server's limit of {config.max_request_items} per request; split the request")
        pixels = await run_in_threadpool(request_pixels, request, config)  # headers only: nothing decoded yet
        with budget.hold(pixels):  # bounds the decoded images held at once, whatever the clients send
            sources, instructions, edits = await run_in_threadpool(decode_request, request, config)
            try:
                output = await state["batcher"].score(sources, instructions, edits)
            except QueueFull:
                raise HTTPException(503, f"the scoring queue is full ({config.max_queue} items); retry later",
                                    headers={"Retry-After": "1"}) from None
            del sources, edits
        metrics.requests += 1
        metrics.items += n
        metrics.latencies.append(time.perf_counter() - start)
        return output_to_response(output)

    app.openapi = lambda: app.openapi_schema or _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus ``ScoreRequest`` (the body ``read_request`` validates, unseen by FastAPI)."""
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    request = ScoreRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(request.pop("$defs", {}), ScoreRequest=request)
    app.openapi_schema = schema
    return schema


def _protocol(config: ServeConfig):
    """uvicorn's h11 protocol with a deadline for the request head: uvicorn closes idle keep-alive
    connections itself but waits forever for a head that trickles in byte by byte."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        def _arm(self) -> None:
            cycle = self.cycle
            self.loop.call_later(config.header_timeout_s, self._head_overdue, cycle)

        def _head_overdue(self, cycle) -> None:
            if self.cycle is cycle and not self.transport.is_closing():  # no new request head since armed
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

    return HeadTimeoutProtocol


def _server(reward: RewardFunction, config: ServeConfig, log_level: str, chat=None):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(
        create_app(reward, config, chat), log_level=log_level, lifespan="on", http=_protocol(config),
        timeout_keep_alive=config.keep_alive_s, limit_concurrency=config.max_connections,
        h11_max_incomplete_event_size=64 * 1024,  # a request head over 64 KiB is refused
    ))


def _listen(config: ServeConfig) -> socket.socket:
    """The listening socket, or one line saying why the address cannot be used."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as err:
        sock.close()
        raise EditRLError(f"reward serve: cannot listen on {config.host}:{config.port} ({err.strerror or err})") from None
    return sock


def serve(reward: RewardFunction, config: ServeConfig, chat=None) -> None:
    """Run the server in the foreground until interrupted."""
    sock = _listen(config)
    try:
        _server(reward, config, "info", chat).run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def serve_in_thread(reward: RewardFunction, config: ServeConfig | None = None, chat=None) -> Iterator[str]:
    """Run the server in a background thread on a free port; yields its base URL (tests, benchmarks)."""
    config = config or ServeConfig(port=0)
    sock = _listen(config)
    host, port = sock.getsockname()[:2]
    server = _server(reward, config, "warning", chat)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="editrl-reward-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the reward server thread did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
