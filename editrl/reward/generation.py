"""What a local generative model answers: text, one log-probability per generated token and the most likely
alternatives at each step. ``editrl reward serve --chat NAME`` serves any ``ChatModel`` over the OpenAI
chat-completions protocol (``editrl.reward.chat_api``); the world registers its VLM as one. Torch- and
fastapi-free, so a model's module can implement it without loading the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass
class TokenLogprob:
    """One generated token: its text as it appears in the answer, its log-probability, and the ``top`` most likely
    tokens at that step as (text, log-probability), most likely first."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Generation:
    """A model's answer: ``text`` is the tokens' texts joined; ``finished`` is False when ``max_tokens`` cut it."""

    tokens: list[TokenLogprob]
    finished: bool

    @property
    def text(self) -> str:
        return "".join(t.token for t in self.tokens)


@runtime_checkable
class ChatModel(Protocol):
    """A local generative model answering one question about images, decoding greedily."""

    name: str

    def generate(self, images: list[Image.Image], text: str, max_tokens: int, top_logprobs: int) -> Generation:
        """The answer to ``text`` about ``images`` (in order), at most ``max_tokens`` tokens, each step with its
        ``top_logprobs`` most likely tokens. Bad input (a question the model cannot read) is one ``EditRLError``."""
        ...
