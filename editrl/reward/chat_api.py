"""The OpenAI chat-completions protocol on ``editrl reward serve --chat NAME``: a local generative model
(``editrl.reward.generation.ChatModel``, e.g. the world VLM) answers as vLLM or SGLang would, so a generative
judge (``editrl.reward.judge``) runs end to end against the embedded default, with no other server.

Supported: ``POST /v1/chat/completions`` with one user message whose content is text and images as base64
``data:`` URLs, greedy decoding (``temperature`` 0 or absent), ``max_tokens`` (or ``max_completion_tokens``),
``logprobs`` and ``top_logprobs`` (the answer's ``choices[0].logprobs.content[i].top_logprobs``); ``GET
/v1/models``. Anything else a request asks for is refused with one line rather than ignored.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Literal, Union

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..errors import EditRLError
from .generation import ChatModel, Generation
from .serve_config import ServeConfig

MAX_TOKENS = 512  # when a request names none
MAX_TOP_LOGPROBS = 20  # OpenAI's limit


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. "detail"
    url: str = Field(description="a base64 data: URL (data:image/png;base64,...)")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. "name"
    role: str
    content: Union[str, list[ContentPart]]


class ChatRequest(BaseModel):
    """The fields this server reads; other OpenAI fields are accepted only at values that change nothing."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    n: int = 1
    stream: bool = False


def question(request: ChatRequest, config: ServeConfig) -> tuple[list, str]:
    """(decoded images in order, the text parts joined by newlines) of a request's one user message; 400 for
    anything this server would otherwise have to ignore."""
    from .serve import decode_image  # serve wires this module in lazily: no import cycle at load time

    if request.stream or request.n != 1 or request.temperature not in (None, 0):
        raise HTTPException(400, "this server answers one greedy completion: send n=1, stream=false and temperature 0")
    if len(request.messages) != 1 or request.messages[0].role != "user":
        raise HTTPException(400, f"messages: expected exactly one user message, got roles {[m.role for m in request.messages]}")
    content = request.messages[0].content
    parts = [ContentPart(type="text", text=content)] if isinstance(content, str) else content
    images, texts = [], []
    for i, part in enumerate(parts):
        name = f"messages[0].content[{i}]"
        if part.type == "text" and part.text is not None:
            texts.append(part.text)
        elif part.type == "image_url" and part.image_url is not None:
            if not part.image_url.url.startswith("data:"):
                raise HTTPException(400, f"{name}: images must be base64 data: URLs (this server fetches nothing)")
            if len(images) >= config.max_request_items:
                raise HTTPException(413, f"messages[0]: more than {config.max_request_items} images (--max-request-items)")
            images.append(decode_image(part.image_url.url, name, config))
        else:
            raise HTTPException(400, f"{name}: a {part.type} part needs its {part.type} field")
    if not texts:
        raise HTTPException(400, "messages[0]: no text part (the question)")
    return images, "\n".join(texts)


def completion(request: ChatRequest, answer: Generation) -> dict:
    """The chat.completion object for ``answer`` (the OpenAI response layout)."""
    def entry(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    logprobs = None
    if request.logprobs:
        k = request.top_logprobs or 0
        logprobs = {"content": [{**entry(t.token, t.logprob), "top_logprobs": [entry(*alt) for alt in t.top[:k]]}
                                for t in answer.tokens]}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": request.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "logprobs": logprobs,
                     "finish_reason": "stop" if answer.finished else "length"}],
        "usage": {"completion_tokens": len(answer.tokens)},
    }


def add_chat_routes(app: FastAPI, model: ChatModel, config: ServeConfig) -> None:
    """``POST /v1/chat/completions`` and ``GET /v1/models`` answered by ``model`` (one request at a time: the model
    is touched by one thread)."""
    if not isinstance(model, ChatModel):
        raise EditRLError(f"reward serve --chat: {model!r} has no name and generate(images, text, max_tokens, top_logprobs)")
    lock = threading.Lock()

    def answer(images: list, text: str, max_tokens: int, top_logprobs: int) -> Generation:
        with lock:
            try:
                return model.generate(images, text, max_tokens, top_logprobs)
            except EditRLError as err:
                raise HTTPException(400, str(err)) from None

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": model.name, "object": "model", "owned_by": "editrl"}]}

    @app.post("/v1/chat/completions", responses={400: {}, 401: {}, 404: {}, 413: {}, 422: {}})
    async def chat_completions(request: ChatRequest) -> dict:
        if request.model != model.name:
            raise HTTPException(404, f"model {request.model!r} is not served here; this server answers as {model.name!r}")
        images, text = await run_in_threadpool(question, request, config)
        max_tokens = request.max_completion_tokens or request.max_tokens or MAX_TOKENS
        top = (request.top_logprobs or 0) if request.logprobs else 0
        return completion(request, await run_in_threadpool(answer, images, text, max_tokens, top))
