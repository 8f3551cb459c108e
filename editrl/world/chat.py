"""The world VLM as a chat model (``editrl reward serve --chat world-vlm``): it answers a question about images
in the OpenAI chat protocol, so a generative judge (``--reward openai:...``) runs end to end on the embedded
default. It reads only the world's words (``prompt=world-verify`` is its own verify question, answered "no
change" when an edit is exactly right); a question with other words is refused, naming them."""

from __future__ import annotations

import torch

from ..errors import EditRLError
from ..images import load_images
from ..reward.generation import Generation, TokenLogprob
from ..reward.output import check_positive
from .verifier import WorldVLMJudge


class WorldVLMChat(WorldVLMJudge):
    """Greedy answers of the world VLM with each token's log-probability and the most likely alternatives."""

    name = "world-vlm"
    label = "world VLM"

    @torch.inference_mode()
    def generate(self, images: list, text: str, max_tokens: int, top_logprobs: int) -> Generation:
        from .pretrain import Sample, next_token_logprobs

        check_positive(max_tokens, "max_tokens")
        if len(images) not in (1, 2):  # it was taught to describe one image and to compare two
            raise EditRLError(f"the {self.label} answers questions about one or two images, got {len(images)}")
        sample = Sample(load_images(list(images), "images"), self._check_words(text, "the question"), "", "chat")
        tokenizer = self.builder.tokenizer
        ids: list[int] = []
        tokens: list[TokenLogprob] = []
        while len(tokens) < max_tokens:
            logprobs = next_token_logprobs(self.model, self.builder, [sample], [ids])[0]
            chosen = int(logprobs.argmax())
            if chosen == tokenizer.eos_token_id:
                return Generation(tokens, finished=True)
            values, indices = logprobs.topk(min(top_logprobs, logprobs.numel())) if top_logprobs else (logprobs[:0], [])
            space = " " if tokens else ""  # words are joined by spaces: a token's text carries the space before it
            words = tokenizer.convert_ids_to_tokens([chosen, *[int(i) for i in indices]])
            tokens.append(TokenLogprob(space + words[0], float(logprobs[chosen]),
                                       [(space + w, float(v)) for w, v in zip(words[1:], values.tolist())]))
            ids.append(chosen)
        return Generation(tokens, finished=False)
