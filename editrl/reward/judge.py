"""Generative judges as rewards: any VLM behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang,
``editrl reward serve --chat``) is a ``RewardFunction``.

Named on every ``--reward`` as ``openai:URL#key=value&...``, URL being the server's ``/v1`` base, e.g.
``openai:http://127.0.0.1:8765/v1#model=world-vlm&mode=prob&prompt=world-verify&yes=no``. Options
(``JudgeConfig``): ``model`` (required), ``mode``, ``prompt``, ``yes``, ``max_tokens``, ``top_logprobs``,
``concurrency``, ``timeout``, ``retries``, ``failures``, ``key_env``, ``cache_size``.

Two modes, after the judges researchers use:

- ``score`` (VIEScore-style): one rubric prompt per dimension; the answer's last line must be ``Score: N`` (or
  ``N``, ``N/10``) with 0 <= N <= 10, else the answer is a failure: one error line quoting it, or with
  ``failures=count`` a NaN score, counted in ``failures`` and warned about; never a silent 0. The fused score is
  the mean over dimensions.
- ``prob`` (Edit-R1-style): the probability that the first answer token is ``yes`` (case and surrounding spaces
  ignored, the variants summed), read from ``choices[0].logprobs.content[0].top_logprobs``; a variant outside the
  ``top_logprobs`` listed counts 0. A server that returns no logprobs is one error line.

Prompts are text files with ``{instruction}`` where the instruction goes; the images are sent first (source, then
edit). ``prompt=`` names a file (one dimension, named by the file's stem), a folder of ``<dimension>.txt`` files,
or a registered word (``editrl.registry.JUDGE_PROMPTS``); the defaults are ``judge_prompts/<mode>/`` beside this
module. Requests run ``concurrency`` at a time with ``HttpEndpoint``'s timeouts and retries; each answer is
cached by the images' bytes, the prompt and the judge's settings, so an interrupted or failed call loses nothing
already answered: scoring again asks only for what is missing. An API key is read from the environment variable
``key_env`` names, never from the spec (which lands in logs).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import math
import os
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import parse_qsl

import torch

from ..errors import EditRLError
from ..images import ImageLike, check_instruction
from ..registry import JUDGE_PROMPTS
from .client import HttpEndpoint, encode_image
from .output import DIMENSIONS, RewardOutput, check_batch_size, check_positive, check_same_length

logger = logging.getLogger(__name__)
PREFIX = "openai:"
MODES = ("score", "prob")
FAILURES = ("raise", "count")
DEFAULT_PROMPTS = Path(__file__).parent / "judge_prompts"
SCORE_LINE = re.compile(r"(?:score\s*[:=]?\s*)?(\d+(?:\.\d+)?)(?:\s*/\s*10)?", re.IGNORECASE)


class JudgeAnswerError(EditRLError):
    """The judge answered, but not in the form score mode reads: a failure of that answer alone (``failures=count``
    counts it). A server that cannot serve the mode at all (no logprobs, no choices) is a plain ``EditRLError``."""


@dataclass(frozen=True)
class JudgeConfig:
    """How a generative judge is asked and read (the options of an ``openai:`` spec)."""

    url: str
    model: str = ""  # required: checked below with one line
    mode: str = "score"
    prompt: str | None = None  # file, folder or registered word; None: judge_prompts/<mode>/
    yes: str = "yes"  # prob mode: the answer word whose probability is the score
    max_tokens: int | None = None  # None: 512 in score mode (room to explain), 1 in prob mode
    top_logprobs: int = 20
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 2
    failures: str = "raise"
    key_env: str | None = None
    cache_size: int = 65536

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EditRLError(f"judge mode={self.mode!r}: expected one of {list(MODES)}")
        if self.failures not in FAILURES:
            raise EditRLError(f"judge failures={self.failures!r}: expected one of {list(FAILURES)}")
        if not self.model:
            raise EditRLError("judge: name the served model, e.g. openai:http://127.0.0.1:8765/v1#model=world-vlm")
        if not self.yes.strip():
            raise EditRLError("judge yes=: expected a word")
        for key in ("concurrency", "cache_size", "top_logprobs") + (("max_tokens",) if self.max_tokens is not None else ()):
            check_positive(getattr(self, key), f"judge {key}")
        if self.top_logprobs > 20:
            raise EditRLError(f"judge top_logprobs={self.top_logprobs}: OpenAI-compatible servers allow at most 20")

    @property
    def answer_tokens(self) -> int:
        return self.max_tokens or (512 if self.mode == "score" else 1)


def parse_judge_spec(spec: str) -> JudgeConfig:
    """The ``JudgeConfig`` of ``openai:URL#key=value&...``; one error line for an unknown key or a bad value."""
    url, _, options = spec[len(PREFIX):].partition("#")
    fields = {f.name: f for f in dataclasses.fields(JudgeConfig) if f.name != "url"}
    try:
        pairs = parse_qsl(options, keep_blank_values=True, strict_parsing=bool(options))
    except ValueError:
        raise EditRLError(f"reward spec {spec!r}: expected openai:URL#key=value&key=value after the '#'") from None
    values: dict = {}
    for key, text in pairs:
        if key not in fields:
            raise EditRLError(f"reward spec {spec!r}: unknown option {key!r}; known: {sorted(fields)}")
        default = fields[key].default
        kind = int if key == "max_tokens" or isinstance(default, int) else float if isinstance(default, float) else str
        try:
            values[key] = (text or None) if default is None and kind is str else kind(text)
        except ValueError:
            raise EditRLError(f"reward spec {spec!r}: {key}={text!r} is not {'an integer' if kind is int else 'a number'}") from None
    return JudgeConfig(url=url, **values)


def load_prompts(prompt: str | None, mode: str) -> dict[str, str]:
    """{dimension: prompt text}: the known dimensions first, in their order, then the others by name."""
    if prompt is None:
        path = DEFAULT_PROMPTS / mode
    else:  # a file or folder, else a registered word (looking one up may import the plugins: only then)
        path = Path(prompt) if Path(prompt).exists() or prompt not in JUDGE_PROMPTS else Path(JUDGE_PROMPTS[prompt])
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        raise EditRLError(f"judge prompt={prompt!r}: no prompt file or folder of <dimension>.txt files at {path}, "
                          f"and not one of the registered prompts {sorted(JUDGE_PROMPTS)}")
    prompts = {f.stem: f.read_text() for f in files}
    order = [d for d in DIMENSIONS if d in prompts] + sorted(d for d in prompts if d not in DIMENSIONS)
    return {d: prompts[d] for d in order}


def parse_score(answer: str) -> float:
    """The 0-10 score on the answer's last non-empty line (``Score: N``, ``N`` or ``N/10``, markdown emphasis and a
    final full stop ignored); ``JudgeAnswerError`` quoting the answer otherwise."""
    lines = [line for line in (re.sub(r"[*`_]", "", raw).strip().rstrip(".") for raw in answer.splitlines()) if line]
    match = SCORE_LINE.fullmatch(lines[-1]) if lines else None
    if match is None or not 0 <= float(match.group(1)) <= 10:
        raise JudgeAnswerError(f"expected a last line 'Score: N' with N from 0 to 10, got {answer[-200:]!r}")
    return float(match.group(1))


def yes_probability(choice: dict, yes: str) -> float:
    """P(first answer token is ``yes``) from a chat choice's logprobs (variants of case and spacing summed)."""
    content = (choice.get("logprobs") or {}).get("content") or []
    if not content:  # the server's shortcoming, not the answer's: every request would fail alike
        raise EditRLError("the server returned no logprobs; mode=prob needs a server that does (vLLM, SGLang, "
                          "editrl reward serve --chat), or use mode=score")
    first = content[0]
    if not first.get("top_logprobs"):
        raise EditRLError("the server returned no top_logprobs for the first token; mode=prob needs them")
    listed = {first["token"]: first["logprob"], **{t["token"]: t["logprob"] for t in first["top_logprobs"]}}
    return sum(math.exp(lp) for token, lp in listed.items() if token.strip().lower() == yes.strip().lower())


def data_url(b64: str) -> str:
    """A ``data:`` URL for base64 image bytes (PNG, JPEG or WebP, as ``encode_image`` sends them)."""
    head = base64.b64decode(b64[:16])
    mime = "image/png" if head.startswith(b"\x89PNG") else "image/jpeg" if head.startswith(b"\xff\xd8") else "image/webp"
    return f"data:{mime};base64,{b64}"


def _images_digest(images: Sequence[str]) -> bytes:
    """sha256 of one item's images (base64, in the order sent): hashed once, shared by its dimensions' questions."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(b"\0" + image.encode())
    return digest.digest()


class ChatJudge:
    """A ``RewardFunction`` asking a generative VLM over the chat-completions protocol (see the module docstring).
    It is shown every source image of a prompt that has several (then the edit, last)."""

    takes_several_sources = True

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.prompts = load_prompts(config.prompt, config.mode)
        self.dimensions = tuple(self.prompts)
        token = None
        if config.key_env is not None:
            token = os.environ.get(config.key_env)
            if not token:
                raise EditRLError(f"judge key_env={config.key_env}: that environment variable is not set")
        self.endpoint = HttpEndpoint(config.url, token, config.timeout, config.retries, label="judge server")
        self.cache: OrderedDict[str, float] = OrderedDict()
        self.failures = 0  # answers that could not be read (failures=count)

    @classmethod
    def from_spec(cls, spec: str) -> "ChatJudge":
        return cls(parse_judge_spec(spec))

    def __repr__(self) -> str:
        return f"ChatJudge({self.config.url!r}, model={self.config.model!r}, mode={self.config.mode!r})"

    def close(self) -> None:
        self.endpoint.close()

    def identity(self) -> dict:
        """What identifies its scores (``editrl.reward.identity``): server, model, how it asks (prompt texts) and reads."""
        c = self.config
        prompts = hashlib.sha256("\0".join(f"{d}\0{t}" for d, t in self.prompts.items()).encode()).hexdigest()[:16]
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}",
                "config": {"url": c.url, "model": c.model, "mode": c.mode, "yes": c.yes, "max_tokens": c.answer_tokens,
                           "top_logprobs": c.top_logprobs, "prompts": prompts}}

    def request_body(self, image_urls: Sequence[str], text: str) -> dict:
        """One chat request: the images (the source or sources, then the edit), then the prompt; greedy; logprobs in
        prob mode."""
        content = [*({"type": "image_url", "image_url": {"url": url}} for url in image_urls), {"type": "text", "text": text}]
        body = {"model": self.config.model, "messages": [{"role": "user", "content": content}],
                "max_tokens": self.config.answer_tokens, "temperature": 0}
        if self.config.mode == "prob":
            body.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        return body

    def ask(self, body: dict) -> float:
        """The value one request's answer gives (a 0-10 score or P(yes)); ``JudgeAnswerError`` if it gives none, also
        for an answer of the wrong shape (a null logprob, content as a list), so it is counted or named, never a
        traceback."""
        answer = self.endpoint.request("POST", "/chat/completions", body)
        try:
            return self._read(answer)
        except EditRLError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise JudgeAnswerError(f"an answer of an unexpected shape ({type(err).__name__}: {err})") from None

    def _read(self, answer) -> float:
        """The value in one chat-completions answer (``ask``)."""
        choices = answer.get("choices") if isinstance(answer, dict) else None
        where = f"judge server {self.config.url} ({self.config.model})"
        if not choices or not isinstance(choices[0], dict):
            raise EditRLError(f"{where}: the answer has no choices: {str(answer)[:200]!r}")
        if self.config.mode == "prob":
            try:
                return yes_probability(choices[0], self.config.yes)
            except EditRLError as err:
                raise EditRLError(f"{where}: {err}") from None
        return parse_score((choices[0].get("message") or {}).get("content") or "")

    def score(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike],
              batch_size: int | None = None) -> RewardOutput:
        """Scores (B, D) over the prompt dimensions; ``batch_size`` does not apply (``concurrency`` requests at a time)."""
        check_same_length(sources, instructions, edits)
        check_batch_size(batch_size, default=1)
        n, dims = len(sources), list(self.prompts)
        sources = [list(s) if isinstance(s, (list, tuple)) else [s] for s in sources]  # a prompt may have several
        values = torch.full((n, len(dims)), math.nan)
        pending: dict[str, tuple[list, dict]] = {}  # cache key -> ([(item, dim index)], request body)
        for i in range(n):
            instruction = check_instruction(instructions[i], f"instructions[{i}]")
            images = (*(encode_image(source, f"sources[{i}][{j}]" if len(sources[i]) > 1 else f"sources[{i}]")
                        for j, source in enumerate(sources[i])), encode_image(edits[i], f"edits[{i}]"))
            urls, images_digest = [data_url(image) for image in images], _images_digest(images)  # once per item
            for d, dim in enumerate(dims):
                text = self.prompts[dim].replace("{instruction}", instruction)
                key = self._key(images_digest, text)
                if key in self.cache:
                    self.cache.move_to_end(key)
                    values[i, d] = self.cache[key]
                else:  # the same question twice in one call is asked once
                    pending.setdefault(key, ([], self.request_body(urls, text)))[0].append((i, d))
        failed = self._ask_all(pending, values, dims)
        if failed:
            self.failures += len(failed)
            logger.warning("judge %s: %d of %d answers could not be read and score NaN (%d so far); first: %s",
                           self.config.url, len(failed), len(pending), self.failures, failed[0])
        zeros = torch.zeros(n)
        return RewardOutput(mu=values, sigma=torch.zeros_like(values), score=values.mean(1), score_sigma=zeros,
                            dimensions=tuple(dims))

    def _ask_all(self, pending: dict, values: torch.Tensor, dims: list[str]) -> list[str]:
        """Ask every pending question concurrently, filling ``values`` and the cache as answers come; the unreadable
        answers (``failures=count``), else one error line after the answers already in are cached."""
        failed: list[str] = []
        error: EditRLError | None = None
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="editrl-judge") as pool:
            futures = {pool.submit(self.ask, body): key for key, (_, body) in pending.items()}
            for future in as_completed(futures):
                if future.cancelled():  # not asked: the server failed on another question first
                    continue
                key = futures[future]
                rows = pending[key][0]
                i, d = rows[0]
                try:
                    value = future.result()
                except JudgeAnswerError as err:
                    if self.config.failures == "raise":
                        error = error or EditRLError(f"judge {self.config.url} ({self.config.model}): items[{i}] {dims[d]}: {err}")
                    failed.append(f"items[{i}] {dims[d]}: {err}")
                    continue
                except Exception as err:  # the server, not the answer: no point asking the rest
                    error = error or (err if isinstance(err, EditRLError) else EditRLError(
                        f"judge {self.config.url} ({self.config.model}): {type(err).__name__}: {err}"))
                    for other in futures:
                        other.cancel()
                    continue
                self._remember(key, value)
                for i, d in rows:
                    values[i, d] = value
        if error is not None:
            kept = sum(1 for key in pending if key in self.cache)
            raise EditRLError(f"{error} ({kept} of {len(pending)} answers received are cached: scoring again asks only "
                              "for the rest)")
        return failed

    def _key(self, images_digest: bytes, text: str) -> str:
        """The cache key of one question: the judge's settings, the prompt text and the images (``_images_digest``)."""
        c = self.config
        digest = hashlib.sha256("\0".join([c.url, c.model, c.mode, c.yes, str(c.answer_tokens), str(c.top_logprobs), text]).encode())
        digest.update(images_digest)
        return digest.hexdigest()

    def _remember(self, key: str, value: float) -> None:
        self.cache[key] = value
        while len(self.cache) > self.config.cache_size:
            self.cache.popitem(last=False)
