"""Generative judges (``--reward openai:...``) against real servers: ``editrl reward serve`` answering the chat
protocol with the world VLM or a scripted model, and a bare server without logprobs."""

from __future__ import annotations

import math
import socket

import httpx
import numpy as np
import pytest
import torch

from editrl.errors import EditRLError
from editrl.reward.judge import DEFAULT_PROMPTS, ChatJudge, parse_judge_spec, parse_score
from editrl.reward.serve_config import ServeConfig
from editrl.reward.specs import build_reward
from editrl.sampler.selection import selection_values
from editrl.world.examples import make_examples

from .conftest import ScriptedChat, bare_server, chat_server

WORLD_PROB = "#model=world-vlm&mode=prob&prompt=world-verify&yes=no&retries=0"


@pytest.fixture(scope="module")
def examples():
    return make_examples(3, seed=0, split="test", size=64)


def direct_no_probability(chat, source, instruction, edit) -> float:
    """P(first answer token 'no') of the world VLM's verify question, computed in process."""
    from editrl.world.pretrain import next_token_logprobs
    from editrl.world.verifier import verify_sample

    logprobs = next_token_logprobs(chat.model, chat.builder, [verify_sample(source, instruction, edit)], [[]])[0]
    return float(logprobs[chat.builder.tokenizer.convert_tokens_to_ids("no")].exp())


def test_prob_mode_reads_the_world_vlm_probability_through_the_server(world_chat, counted_world, examples):
    url, served = counted_world
    judge = build_reward(f"openai:{url}{WORLD_PROB}")
    sources, instructions = [e.source for e in examples], [e.instruction for e in examples]
    out = judge.score(sources + sources, instructions + instructions, [e.target for e in examples] + sources)
    assert out.dimensions == ("instruction_following",) and out.mu.shape == (6, 1)
    expected = [direct_no_probability(world_chat, s, t, e) for s, t, e in
                zip(sources + sources, instructions + instructions, [e.target for e in examples] + sources)]
    assert torch.allclose(out.score, torch.tensor(expected), atol=1e-5)
    assert torch.equal(out.score, out.mu[:, 0]) and not out.sigma.any()
    assert out.score[:3].mean() > out.score[3:].mean()  # exact targets over unedited sources
    # the images arrive as sent (lossless), the prompt filled in; the requests run concurrently, in any order
    pixels = [tuple(np.asarray(im.convert("RGB")).tobytes() for im in images) for images in [
        (s, e) for s, e in zip(sources + sources, [e.target for e in examples] + sources)]]
    received = [tuple(np.asarray(im.convert("RGB")).tobytes() for im in images) for images, _ in served.questions]
    assert sorted(received) == sorted(pixels)
    assert sorted(text for _, text in served.questions) == sorted(f"apply: {t} compare\n" for t in instructions * 2)


def test_cache_hits_send_no_request(counted_world, examples):
    url, served = counted_world
    judge = ChatJudge.from_spec(f"openai:{url}{WORLD_PROB}")
    args = [e.source for e in examples], [e.instruction for e in examples], [e.target for e in examples]
    first = judge.score(*args)
    assert len(served.questions) == 3
    again = judge.score(*args)
    assert len(served.questions) == 3 and torch.equal(first.score, again.score)
    other = [examples[1].source, examples[0].source, examples[2].source]  # one image changed, the rest cached
    judge.score(other, args[1], args[2])
    assert len(served.questions) == 5  # items 0 and 1 now hold other bytes; item 2 is a hit


def test_score_mode_parses_each_dimension_and_fuses_by_mean(examples):
    chat = ScriptedChat({"Rate how well": "The ring is smaller.\nScore: 7", "visual quality": "Clean.\n**Score: 4**"})
    with chat_server(chat) as url:
        out = build_reward(f"openai:{url}#model=scripted").score([examples[0].source], [examples[0].instruction],
                                                               [examples[0].target])
    assert out.dimensions == ("instruction_following", "visual_quality")
    assert out.mu.tolist() == [[7.0, 4.0]] and out.score.tolist() == [5.5]


def test_an_unparsable_answer_is_one_line_and_loses_nothing_scored(examples):
    chat = ScriptedChat({"Make the red": "Score: 9", "": "I cannot judge this"})
    sources, instructions, edits = [e.source for e in examples], [e.instruction for e in examples], [e.target for e in examples]
    with chat_server(chat) as url:
        judge = ChatJudge.from_spec(f"openai:{url}#model=scripted&prompt=" + _if_prompt())
        with pytest.raises(EditRLError) as err:
            judge.score(sources, instructions, edits)
        message = str(err.value)
        assert "\n" not in message and "'I cannot judge this'" in message and "Score: N" in message
        assert "1 of 3 answers received are cached" in message
        counting = ChatJudge.from_spec(f"openai:{url}#model=scripted&failures=count&prompt=" + _if_prompt())
        counting.cache = judge.cache  # what the failed call received is kept: only the two failures are asked again
        out = counting.score(sources, instructions, edits)
    assert instructions[0].startswith("Make the red")
    assert out.score[0] == 9.0 and math.isnan(out.score[1]) and math.isnan(out.score[2]) and counting.failures == 2
    values = selection_values(out)  # best-of-N never picks an unscored candidate
    assert values[0] == 9.0 and values[1:].tolist() == [-math.inf, -math.inf] and int(values.argmax()) == 0


def test_the_world_vlm_in_score_mode_is_a_wrong_format(counted_world, examples):
    url, _ = counted_world
    judge = build_reward(f"openai:{url}#model=world-vlm&prompt=world-verify&max_tokens=8&retries=0")
    with pytest.raises(EditRLError, match=r"items\[0\] instruction_following: expected a last line 'Score: N'"):
        judge.score([examples[0].source], [examples[0].instruction], [examples[0].target])


def test_a_server_without_logprobs_is_one_line(examples):
    with bare_server({"choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"}, "logprobs": None}]}) as url:
        for failures in ("raise", "count"):  # a server shortcoming, not an answer's: an error either way
            judge = build_reward(f"openai:{url}#model=any&mode=prob&failures={failures}")
            with pytest.raises(EditRLError, match="returned no logprobs; mode=prob needs a server that does") as err:
                judge.score([examples[0].source], [examples[0].instruction], [examples[0].target])
    assert "\n" not in str(err.value)


def test_a_dead_port_is_one_line_after_the_retries(examples, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the judge connects
    judge = build_reward(f"openai:http://127.0.0.1:{port}/v1#model=m&retries=1&timeout=2&concurrency=1")
    judge.endpoint.backoff = 0.01
    with pytest.raises(EditRLError, match=r"failed after 2 attempts: ConnectError.*\(0 of 6 answers") as err:
        judge.score([e.source for e in examples], [e.instruction for e in examples], [e.target for e in examples])
    assert "\n" not in str(err.value)
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert 1 <= len(retried) <= 2  # the first question (and one already picked up): the queued ones were never asked


def test_a_slow_server_times_out_in_one_line_and_keeps_the_fast_answers(examples):
    chat = ScriptedChat({"slow": "Score: 3", "": "Score: 8"}, delay=1.5)
    with chat_server(chat) as url:
        judge = ChatJudge.from_spec(f"openai:{url}#model=scripted&timeout=0.5&retries=0&concurrency=1&prompt=" + _if_prompt())
        with pytest.raises(EditRLError, match=r"failed after 1 attempts: ReadTimeout.*\(1 of 2 answers received are cached"):
            judge.score([examples[0].source] * 2, [examples[0].instruction, "add a slow ring"], [examples[0].target] * 2)
        assert list(judge.cache.values()) == [8.0]


def test_an_api_key_comes_from_the_environment(monkeypatch, examples):
    chat = ScriptedChat({"": "Score: 6"})
    with chat_server(chat, ServeConfig(port=0, token="s3cret")) as url:
        args = [examples[0].source], [examples[0].instruction], [examples[0].target]
        with pytest.raises(EditRLError, match="answered 401"):
            build_reward(f"openai:{url}#model=scripted").score(*args)
        with pytest.raises(EditRLError, match="key_env=JUDGE_KEY: that environment variable is not set"):
            build_reward(f"openai:{url}#model=scripted&key_env=JUDGE_KEY")
        monkeypatch.setenv("JUDGE_KEY", "s3cret")
        assert build_reward(f"openai:{url}#model=scripted&key_env=JUDGE_KEY").score(*args).score.tolist() == [6.0]


def test_the_chat_endpoint_refuses_what_it_would_otherwise_ignore(counted_world, examples):
    from editrl.reward.client import encode_image
    from editrl.reward.judge import data_url

    url, served = counted_world
    image = {"type": "image_url", "image_url": {"url": data_url(encode_image(examples[0].source))}}
    ask = {"model": "world-vlm", "messages": [{"role": "user", "content": [image, {"type": "text", "text": "describe"}]}],
           "max_tokens": 4}
    with httpx.Client(base_url=url) as client:
        assert client.get("/models").json()["data"][0]["id"] == "world-vlm"
        answer = client.post("/chat/completions", json={**ask, "logprobs": True, "top_logprobs": 3}).json()
        token = answer["choices"][0]["logprobs"]["content"][0]
        assert len(token["top_logprobs"]) == 3 and token["top_logprobs"][0]["token"] == token["token"]
        assert answer["choices"][0]["finish_reason"] == "length"  # a description is longer than 4 words
        assert client.post("/chat/completions", json=ask).json()["choices"][0]["logprobs"] is None
        wrong = ({"model": "gpt-4o"}, {"temperature": 0.7}, {"messages": [{"role": "user", "content": "describe"}]},
                 {"messages": [{"role": "user", "content": [image, {"type": "text", "text": "rate this image"}]}]},
                 {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}]})
        codes = [client.post("/chat/completions", json={**ask, **change}) for change in wrong]
    assert [r.status_code for r in codes] == [404, 400, 400, 400, 400]
    assert "one or two images, got 0" in codes[2].json()["detail"]
    assert "'rate', 'this'" in codes[3].json()["detail"] and "world instruction words" in codes[3].json()["detail"]
    assert "base64 data: URLs" in codes[4].json()["detail"]


def test_spec_options_are_checked():
    config = parse_judge_spec("openai:http://h:1/v1#model=m&mode=prob&top_logprobs=5&timeout=2.5")
    assert (config.url, config.model, config.mode, config.top_logprobs, config.timeout) == ("http://h:1/v1", "m", "prob", 5, 2.5)
    assert config.answer_tokens == 1 and parse_judge_spec("openai:http://h:1/v1#model=m").answer_tokens == 512
    for spec, message in [("openai:http://h/v1#model=m&colour=red", "unknown option 'colour'"),
                          ("openai:http://h/v1#model=m&concurrency=x", "concurrency='x' is not an integer"),
                          ("openai:http://h/v1", "name the served model"),
                          ("openai:http://h/v1#model=m&mode=vote", "expected one of \\['score', 'prob'\\]"),
                          ("openai:http://h/v1#model=m&prompt=/nowhere", "no prompt file or folder"),
                          ("openai:ftp://h/v1#model=m", "expected openai:http")]:
        with pytest.raises(EditRLError, match=message):
            build_reward(spec)


@pytest.mark.parametrize("answer, value", [("Score: 7", 7.0), ("fine\n\nscore = 10.", 10.0), ("8/10", 8.0), ("0", 0.0),
                                           ("**Score:** 6.5", 6.5), ("ok\n```\nScore: 7\n```", 7.0)])
def test_score_lines_parse(answer, value):
    assert parse_score(answer) == value


@pytest.mark.parametrize("answer", ["Score: 11", "Score: 7 out of ten", "7 or 8", "", "Score: -1", "Score: 7\nThanks!"])
def test_other_answers_do_not_parse(answer):
    with pytest.raises(EditRLError, match="expected a last line 'Score: N'"):
        parse_score(answer)


def _if_prompt() -> str:
    from editrl.reward.judge import DEFAULT_PROMPTS

    return str(DEFAULT_PROMPTS / "score" / "instruction_following.txt")


def test_reward_serve_builds_the_named_chat_model(monkeypatch, capsys):
    import editrl.reward.serve as serve_module
    from editrl.cli import main

    served = {}
    monkeypatch.setattr(serve_module, "serve", lambda reward, config, chat: served.update(reward=reward, chat=chat))
    assert main(["reward", "serve", "--reward", "oracle", "--chat", "world-vlm"]) == 0
    assert served["chat"].name == "world-vlm" and type(served["reward"]).__name__ == "Oracle"
    assert main(["reward", "serve", "--reward", "oracle", "--chat", "gpt"]) == 2
    assert "--chat 'gpt': expected one of ['world-vlm']" in capsys.readouterr().err


def _score_answer(text: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def test_a_rate_limit_or_an_overloaded_gateway_is_retried(examples):
    """429 (rate limited) and 502/504 mean "not now" on a hosted API: retried with backoff, then the answer counts."""
    requests = []
    answers = [(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"}), (502, {"error": "bad gateway"}, {}),
               (200, _score_answer("Score: 6"), {})]
    with bare_server(answers, requests) as url:
        judge = build_reward(f"openai:{url}#model=any&prompt={DEFAULT_PROMPTS}/score/instruction_following.txt&retries=2")
        judge.endpoint.backoff = 0.01
        out = judge.score([examples[0].source], [examples[0].instruction], [examples[0].target])
    assert out.score.tolist() == [6.0] and len(requests) == 3


def test_an_answer_of_the_wrong_shape_is_counted_or_one_line_and_the_rest_is_cached(examples):
    """A null logprob in prob mode is an unreadable answer (counted with failures=count, else one line), never a
    traceback; the other answers are cached."""
    good = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"},
                         "logprobs": {"content": [{"token": "yes", "logprob": -0.5,
                                                   "top_logprobs": [{"token": "yes", "logprob": -0.5}]}]}}]}
    bad = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"},
                        "logprobs": {"content": [{"token": "yes", "logprob": None,
                                                  "top_logprobs": [{"token": "yes", "logprob": None}]}]}}]}
    args = [e.source for e in examples[:2]], [e.instruction for e in examples[:2]], [e.target for e in examples[:2]]
    with bare_server([(200, bad, {}), (200, good, {})]) as url:
        counted = build_reward(f"openai:{url}#model=any&mode=prob&failures=count&concurrency=1")
        out = counted.score(*args)
    assert counted.failures == 1 and out.score.isnan().tolist() == [True, False]
    assert out.score[1].item() == pytest.approx(math.exp(-0.5))
    with bare_server([(200, bad, {}), (200, good, {})]) as url:
        strict = build_reward(f"openai:{url}#model=any&mode=prob&concurrency=1")
        with pytest.raises(EditRLError, match=r"unexpected shape \(TypeError.*\(1 of 2 answers received are cached") as err:
            strict.score(*args)
    assert "\n" not in str(err.value)


def test_a_judge_is_shown_every_source_of_a_prompt_then_the_edit(examples):
    """A prompt with several sources: the judge (takes_several_sources) gets them all, in order, then the edit last;
    the cache tells two prompts apart that differ only in a reference."""
    from .conftest import Counting

    chat = Counting(ScriptedChat({"Rate how well": "Score: 8", "visual quality": "Score: 5"}))
    first, reference, edit = examples[0].source, examples[1].source, examples[0].target
    with chat_server(chat) as url:
        judge = build_reward(f"openai:{url}#model=scripted")
        assert judge.score([[first, reference]], [examples[0].instruction], [edit]).mu.tolist() == [[8.0, 5.0]]
        judge.score([[first, examples[2].source]], [examples[0].instruction], [edit])
    pixels = [np.asarray(im.convert("RGB")).tobytes() for im in (first, reference, edit)]
    assert [np.asarray(im.convert("RGB")).tobytes() for im in chat.questions[0][0]] == pixels
    assert len(chat.questions) == 4  # two dimensions, two prompts: the other reference is not a cache hit
