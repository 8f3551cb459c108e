"""The processors EditReward backbones are read with (production checkpoints and tiny in-code ones alike)."""

from __future__ import annotations

from transformers import ProcessorMixin, Qwen2_5_VLProcessor, Qwen3VLProcessor

# diffusers loads a pipeline component saved from a non-library module by looking its base class up in that module,
# so ProcessorMixin is exported here: a Qwen-Image-Edit pipeline holding this processor loads from a saved folder
__all__ = ["ImageOnlyQwen2_5_VLProcessor", "ImageOnlyQwen3VLProcessor", "ProcessorMixin"]


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """A Qwen2.5-VL processor without a video processor.

    The stock class insists on a video processor, which needs torchvision; editrl only ever feeds
    images, so the processor is built without one.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    """A Qwen3-VL processor without a video processor (for the same reason)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)
