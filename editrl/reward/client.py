"""``RemoteReward``: a ``RewardFunction`` backed by an ``editrl reward serve`` endpoint.

Best-of-N, RL and filtering take it wherever they take an in-process reward (``--reward
http://host:port``). Images travel as lossless PNG of the same RGB pixels the in-process reward
would see, and scores come back as float32 values, so the output equals in-process scoring.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
from pathlib import Path
from typing import Sequence

from ..errors import EditRLError
from ..images import ImageLike, open_image
from .output import RewardOutput, check_batch_size

logger = logging.getLogger(__name__)


PNG_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "P", "RGB", "RGBA")  # modes PNG stores losslessly


def encode_image(image: ImageLike, name: str = "image") -> str:
    """Base64 of ``image`` such that the server decodes exactly what the in-process reward would see:
    a PNG/JPEG/WebP file or bytes as they are (mode and EXIF orientation kept, so the served reward
    converts them its own way), anything else as a lossless PNG in its own mode (RGB if PNG cannot
    store that mode)."""
    from .wire import IMAGE_FORMATS

    raw = Path(image).read_bytes() if isinstance(image, (str, os.PathLike)) and Path(image).is_file() else image
    decoded = open_image(raw, name)
    if isinstance(raw, (bytes, bytearray)) and decoded.format in IMAGE_FORMATS:
        return base64.b64encode(raw).decode("ascii")
    if decoded.mode not in PNG_MODES:
        decoded = decoded.convert("RGB")
    buffer = io.BytesIO()
    exif = decoded.getexif()
    decoded.save(buffer, format="PNG", compress_level=1, **({"exif": exif} if len(exif) else {}))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


RETRY_STATUS = (429, 502, 503, 504)
"""Answers that mean "not now" (rate limited, a gateway or the server overloaded), retried; other 4xx/5xx are final."""


class HttpEndpoint:
    """JSON over HTTP with timeouts and retries (connection errors, timeouts and 503, exponential backoff, the
    server's Retry-After honoured); any other error status is one line. Shared by ``RemoteReward`` and the
    generative judge (``editrl.reward.judge``); ``httpx.Client`` is thread-safe, so one endpoint serves
    concurrent requests.

    Args:
        url: base URL, e.g. ``http://127.0.0.1:8765``.
        token: bearer token, sent as ``Authorization: Bearer``.
        timeout: seconds allowed for connecting and for each response.
        retries: extra attempts after a transport error (connection refused or reset, timeout) or an answer of
            ``RETRY_STATUS`` (overloaded or rate-limited, honouring ``Retry-After``).
        backoff: first wait between attempts in seconds (doubles each time).
        label: how errors name the server.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0, retries: int = 4,
                 backoff: float = 0.25, label: str = "reward server") -> None:
        import httpx

        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EditRLError(f"{label} url: expected http://host:port or https://..., got {url!r}")
        if not (timeout > 0 and backoff >= 0 and isinstance(retries, int) and retries >= 0):
            raise EditRLError(f"{label}: need timeout > 0, retries >= 0 and backoff >= 0, got {timeout}, {retries}, {backoff}")
        self.url, self.label = url.rstrip("/"), label
        self.retries, self.backoff = retries, backoff
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout))

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON answer of one request, retried as the class says; one error line when it cannot be had."""
        import httpx

        retryable = (httpx.TransportError,)  # connect/read/write errors and timeouts, resets, protocol errors
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2**attempt
            try:
                response = self._client.request(method, path, json=body)
            except retryable as err:
                problem = f"{type(err).__name__}: {err}"
            else:
                if response.status_code in RETRY_STATUS:
                    problem = _detail(response)
                    wait = max(wait, float(response.headers.get("Retry-After", 0) or 0))
                elif response.status_code >= 400:
                    raise EditRLError(f"{self.label} {self.url}{path} answered {response.status_code}: {_detail(response)}")
                else:
                    try:
                        return response.json()
                    except ValueError:
                        raise EditRLError(f"{self.label} {self.url}{path} answered {response.status_code} with a body that "
                                          f"is not JSON: {response.text[:200]!r}") from None
            if attempt < self.retries:
                logger.warning("%s %s: %s; retrying in %.2fs", self.label, self.url, problem, wait)
                time.sleep(wait)
        raise EditRLError(f"{self.label} {self.url}{path} failed after {self.retries + 1} attempts: {problem}")


class RemoteReward:
    """Scores through HTTP (``HttpEndpoint``: timeouts, retries with backoff) in requests of at most
    ``request_items`` items.

    Args:
        url: base URL of the server, e.g. ``http://127.0.0.1:8765``.
        token: bearer token if the server was started with ``--token``.
        timeout: seconds allowed for connecting and for each response.
        retries: extra attempts after a connection error, timeout or 503.
        backoff: first wait between attempts in seconds (doubles each time).
        request_items: items per HTTP request (keep it at or below the server's --max-request-items).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.25,
        request_items: int = 32,
    ) -> None:
        if not (isinstance(request_items, int) and request_items >= 1):
            raise EditRLError(f"RemoteReward: request_items must be an integer >= 1, got {request_items!r}")
        self.request_items = request_items
        self._endpoint = HttpEndpoint(url, token, timeout, retries, backoff)
        self.url = self._endpoint.url

    def close(self) -> None:
        self._endpoint.close()

    def __enter__(self) -> "RemoteReward":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteReward({self.url!r})"

    def health(self) -> dict:
        return self._endpoint.request("GET", "/health")

    def identity(self) -> dict:
        """The served reward's identity (``editrl.reward.identity``): scores through the server and in
        process with the same model count as one run."""
        health = self.health()
        return health.get("reward") or {"url": self.url, "model": health.get("model")}

    def score(
        self,
        sources: Sequence[ImageLike],
        instructions: Sequence[str],
        edits: Sequence[ImageLike],
        batch_size: int | None = None,
    ) -> RewardOutput:
        """Score the triples remotely; ``batch_size`` (if given) caps the items per request."""
        from .wire import response_to_output

        if not (len(sources) == len(instructions) == len(edits)):
            raise EditRLError(f"reward: sources, instructions and edits must have the same length, got {len(sources)}, {len(instructions)}, {len(edits)}")
        if len(sources) == 0:
            raise EditRLError("reward: nothing to score (empty sources)")
        chunk = min(check_batch_size(batch_size, default=self.request_items), self.request_items)
        outputs = []
        for start in range(0, len(sources), chunk):
            items = [
                {"source": encode_image(sources[i], f"sources[{i}]"), "instruction": instructions[i],
                 "edit": encode_image(edits[i], f"edits[{i}]")}
                for i in range(start, min(start + chunk, len(sources)))
            ]
            outputs.append(response_to_output(self._endpoint.request("POST", "/v1/score", {"items": items})))
        return RewardOutput.cat(outputs)


def _detail(response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text
