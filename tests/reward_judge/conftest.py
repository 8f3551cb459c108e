"""Real servers for the generative-judge tests: ``editrl reward serve`` answering the chat protocol with the world
VLM or with a scripted chat model, and a bare OpenAI-style server that returns no logprobs."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy.random  # noqa: F401 - imported here, not lazily by two threads at once (numpy 2 lazy-import race)
import pytest

from editrl.reward.generation import Generation, TokenLogprob
from editrl.reward.serve import serve_in_thread
from editrl.reward.serve_config import ServeConfig


class ToyReward:
    """The /v1/score side of the server, unused by these tests."""

    def score(self, sources, instructions, edits, batch_size=None):
        raise AssertionError("the judge tests never call /v1/score")


class Counting:
    """A chat model that counts the questions it answers (what a cache hit must not add to)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.questions = inner, inner.name, []

    def generate(self, images, text, max_tokens, top_logprobs):
        self.questions.append((images, text))
        return self.inner.generate(images, text, max_tokens, top_logprobs)


class ScriptedChat:
    """Answers the first entry of ``answers`` whose key is in the question; a question holding "slow" waits
    ``delay`` seconds first. Every answer token has log-probability -0.25 with one alternative, "maybe", at -2."""

    name = "scripted"

    def __init__(self, answers: dict[str, str], delay: float = 0.0) -> None:
        self.answers, self.delay = answers, delay

    def generate(self, images, text, max_tokens, top_logprobs):
        if "slow" in text:
            time.sleep(self.delay)
        answer = next(a for key, a in self.answers.items() if key in text)
        words = answer.split(" ")[:max_tokens]
        tokens = [TokenLogprob((" " if i else "") + w, -0.25, [((" " if i else "") + w, -0.25), ("maybe", -2.0)][:top_logprobs])
                  for i, w in enumerate(words)]
        return Generation(tokens, finished=len(words) == len(answer.split(" ")))


@contextmanager
def chat_server(model, config: ServeConfig | None = None):
    """``editrl reward serve``'s app on a free port answering the chat protocol with ``model``; yields the /v1 URL."""
    with serve_in_thread(ToyReward(), config or ServeConfig(port=0), chat=model) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="session")
def world_chat():
    from editrl.registry import CHAT_MODELS

    return CHAT_MODELS["world-vlm"](None)


@pytest.fixture
def counted_world(world_chat):
    """(the /v1 URL, the counting wrapper) of a server answering as the world VLM."""
    model = Counting(world_chat)
    with chat_server(model) as url:
        yield url, model


@contextmanager
def bare_server(body: dict | list, requests: list | None = None):
    """A plain HTTP server answering every POST with ``body`` (an OpenAI-style server without logprobs), or with the
    next of a list of ``(status, body, headers)`` (the last one repeated); each POST's path is appended to
    ``requests``."""
    answers = body if isinstance(body, list) else [(200, body, {})]
    requests = [] if requests is None else requests

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.path)
            status, answer, headers = answers[min(len(requests), len(answers)) - 1]
            data = json.dumps(answer).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
