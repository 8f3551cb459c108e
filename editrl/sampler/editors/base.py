"""The editor interface: one adapter per diffusers pipeline, and the one denoising loop in editrl.

Diffusers pipelines run their whole loop inside ``__call__``; best-of-N pruning, x0 previews and
RL (SDE steps, log-probs, LoRA gradients) all need to stop, inspect and step candidates one by one.
So each adapter only exposes the model-specific pieces, all in *flow coordinates*

    x_t = (1 - sigma) x0 + sigma noise,    v = noise - x0,    x0_hat = x_t - sigma v,

and ``denoise`` runs the same loop for every model and every user: plain sampling, pruned search, RL
rollouts and evaluation. Per step the velocity at ``sigmas[i]`` goes to ``on_step`` (previews,
pruning, counting), then to ``step``, which moves the latents to ``sigmas[i + 1]``: the Euler ODE step
here, RL's SDE steps (``editrl.rl.sde.SDESampler``) from above. Rows of a batch never interact: row i
of ``initial_noise`` depends on ``seeds[i]`` only and every step is row-wise, so a candidate is
reproducible from its seed alone, whichever batch it was drawn in.

NFE (number of function evaluations) counts denoiser forward passes per candidate and step, with
each classifier-free-guidance branch counted separately (``nfe_per_step``: 1 for guidance-distilled
FLUX.1-Kontext, 2 for Qwen-Image-Edit's true CFG, 3 for InstructPix2Pix's text + image guidance),
because that is what the compute costs whether the branches run in one batch or not.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ...errors import EditRLError
from ...images import ImageLike, check_instruction, load_images
from ...loading import quiet_loading

logger = logging.getLogger(__name__)


@dataclass
class EditCondition:
    """Everything the denoiser needs besides the noisy latents, encoded once per (source, instruction).

    ``batched`` holds tensors whose dimension 0 is the batch (text embeddings, condition-image
    latents); ``shared`` holds batch-independent values (position ids, guidance scale). ``sources``
    are the source images at the editor's working size ``size`` (width, height; None: the square
    ``resolution``), kept for scoring previews with a reward; the edits come out at that size too.
    """

    batched: dict[str, torch.Tensor]
    shared: dict[str, Any] = field(default_factory=dict)
    sources: list[Image.Image] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    references: list[list[Image.Image]] = field(default_factory=list)
    """Each row's further source images after the first, each at its own working size (empty: one source a row)."""

    def __len__(self) -> int:
        return len(self.instructions)

    def select(self, index: torch.Tensor | Sequence[int]) -> "EditCondition":
        """The rows ``index`` (in that order; repeats allowed) — for groups and pruning."""
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        rows = idx.tolist()
        return EditCondition(
            batched={k: v.index_select(0, idx.to(v.device)) for k, v in self.batched.items()},
            shared=dict(self.shared),
            sources=[self.sources[i] for i in rows],
            instructions=[self.instructions[i] for i in rows],
            size=self.size,
            references=[self.references[i] for i in rows] if self.references else [],
        )

    def prompt_sources(self) -> list[Image.Image | list[Image.Image]]:
        """Each row's source as a reward is given it (``reward.output.sources_for``): the image, or with
        references the list of all its sources."""
        return source_rows(self.sources, self.references) if self.references else list(self.sources)

    def repeat_interleave(self, k: int) -> "EditCondition":
        """Each row repeated ``k`` times in place: one source -> k candidates."""
        return self.select(torch.arange(len(self)).repeat_interleave(k))


@dataclass
class SampleResult:
    """Images and final (clean, packed) fp32 latents of B candidates; ``nfe`` is the total over all B."""

    images: list[Image.Image]
    latents: torch.Tensor
    nfe: int


SourceLike = ImageLike | Sequence[ImageLike]
"""One prompt's source: an image, or a list (or tuple) of images for an editor that takes several — the first is
the image edited (the output has its working size), the others are references."""


def source_rows(sources: Sequence, references: Sequence[Sequence] | None) -> list[list]:
    """Each prompt's sources as one list, the edited image first (``split_sources`` in reverse)."""
    return [[source, *further] for source, further in zip(sources, references or [[]] * len(sources))]


def split_sources(sources: Sequence[SourceLike]) -> tuple[list[ImageLike], list[list[ImageLike]]]:
    """Each prompt's sources -> (the first of each, the further ones of each)."""
    rows = [list(s) if isinstance(s, (list, tuple)) else [s] for s in sources]
    for i, row in enumerate(rows):
        if not row:
            raise EditRLError(f"sources[{i}]: an empty list; expected one or more source images")
    return [row[0] for row in rows], [row[1:] for row in rows]


def seed_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per candidate: noise drawn on the CPU is identical on every device."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``step(x, v, sigmas, i)``: the latents at ``sigmas[i + 1]`` from those at ``sigmas[i]`` and their velocity."""
OnStep = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor | None]
"""``on_step(i, sigma, x, v)`` after each velocity evaluation, before the step; the x0 preview of that
step is ``x - sigma[:, None, None] * v``. Returning row indices continues with those rows only (pruning)."""


def euler_step(x: torch.Tensor, v: torch.Tensor, sigmas: torch.Tensor, i: int) -> torch.Tensor:
    """The flow ODE's Euler step ``x + (sigmas[i + 1] - sigmas[i]) v``."""
    return x + (sigmas[i + 1] - sigmas[i]).to(x.device) * v


def denoise(velocity: Callable, x: torch.Tensor, cond: EditCondition, sigmas: torch.Tensor, step: Step = euler_step,
            on_step: OnStep | None = None) -> torch.Tensor:
    """Run the schedule ``sigmas`` from the latents ``x`` (one row per row of ``cond``) with
    ``velocity(x, sigma, cond)`` (an ``Editor.velocity``); returns the last latents. Running
    ``sigmas[:k + 1]`` then ``sigmas[k:]`` gives exactly the latents of ``sigmas``."""
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i].expand(x.shape[0]).to(x.device)
        v = velocity(x, sigma, cond)
        rows = on_step(i, sigma, x, v) if on_step is not None else None
        if rows is not None:
            x, v, cond = x[rows.to(x.device)], v[rows.to(v.device)], cond.select(rows)
        x = step(x, v, sigmas, i)
    return x


PHOTO_ADVICE = ("For real photos pass --editor flux-kontext, qwen-image-edit or instruct-pix2pix (with --model a local "
                "folder) and a real --reward")  # the command line's words; the demo passes its own


class Editor:
    """Base class of the editor adapters; subclasses implement the model-specific methods.

    Subclasses set ``name``, ``nfe_per_step`` and the ``DEFAULT_*`` values and implement
    ``_encode``, ``initial_noise``, ``sigmas``, ``velocity`` and ``decode``.
    ``resolution`` is the editor's pixel budget: a square source is edited at ``resolution`` x
    ``resolution``, any other at about as many pixels with its own aspect ratio (``aspect_size``,
    each adapter following its pipeline's resizing rule); ``size`` arguments are (width, height),
    None meaning that square. An editor with a ``scope`` (a toy model that knows square scenes of one
    size: the world editor) keeps its square.
    """

    name: str = "editor"
    origin: dict | None = None  # {"editor", "model", "lora"} as ``load_editor`` was asked: provenance of outputs
    scope: str | None = None  # what a narrow editor knows (the world editor: its toy scenes); see ``source_notes``
    nfe_per_step: int = 1
    DEFAULT_STEPS: int = 28
    DEFAULT_GUIDANCE: float = 2.5
    DEFAULT_RESOLUTION: int = 1024
    lora_layers_key: str = "transformer_lora_layers"  # the pipeline's ``save_lora_weights`` argument for the denoiser
    max_sources: int = 1  # source images one prompt may carry (several: the first is edited, the rest are references)
    pipeline_kwargs: dict[str, Any] = {}  # extra ``from_pretrained`` arguments the pipeline needs to load offline
    denoiser: str = "transformer"  # the pipeline component that denoises (what RL trains with LoRA; InstructPix2Pix: unet)
    text_encoders_offloaded: bool = False  # set by ``offload_text_encoders``

    def __init__(
        self,
        pipe,
        resolution: int | None = None,
        default_steps: int | None = None,
        default_guidance: float | None = None,
    ):
        self.pipe = pipe
        self._warned: set[str] = set()
        self.resolution = int(resolution or self.DEFAULT_RESOLUTION)
        multiple = self.resolution_multiple
        if self.resolution % multiple:
            raise EditRLError(f"resolution: {self.name} needs a multiple of {multiple}, got {self.resolution}")
        self.default_steps = int(default_steps or self.DEFAULT_STEPS)
        self.default_guidance = float(self.DEFAULT_GUIDANCE if default_guidance is None else default_guidance)

    # ----------------------------------------------------------------- model-specific pieces
    resolution_multiple: int = 16  # the side must be a multiple of this (VAE factor x packing)

    @property
    def transformer(self) -> torch.nn.Module:
        """The denoiser (what RL trains with LoRA): the pipeline's ``denoiser`` component."""
        return getattr(self.pipe, self.denoiser)

    @transformer.setter
    def transformer(self, module: torch.nn.Module) -> None:
        """Install a wrapper of the denoiser (RL's FSDP sharding) where the pipeline and ``velocity`` find it."""
        setattr(self.pipe, self.denoiser, module)

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        """The pipeline's text encoders: its ``text_encoder*`` components (FLUX: CLIP and T5; others: one VLM/LLM)."""
        return [module for name, module in self.pipe.components.items()
                if name.startswith("text_encoder") and isinstance(module, torch.nn.Module)]

    def offload_text_encoders(self) -> None:
        """Keep the text encoders on the CPU from now on, except while ``encode`` runs (then on the denoiser's device):
        RL's ``offload_text_encoder`` frees their accelerator memory for training. The encodings do not change; each
        ``encode`` pays two transfers of their weights."""
        self.text_encoders_offloaded = True
        for module in self.text_encoders:
            module.to("cpu")

    @contextmanager
    def text_encoders_on_device(self) -> Iterator[None]:
        """Offloaded text encoders (``offload_text_encoders``) on the denoiser's device inside the block, on the CPU
        after it; a no-op otherwise."""
        modules = self.text_encoders if self.text_encoders_offloaded else []
        for module in modules:
            module.to(self.device)
        try:
            yield
        finally:
            for module in modules:
                module.to("cpu")

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def _encode(self, sources: list[Image.Image], instructions: list[str], guidance: float) -> EditCondition:
        raise NotImplementedError

    def initial_noise(self, seeds: Sequence[int], size: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, L, C) fp32 noise in the model's packed layout for images of ``size``; row i depends on
        ``seeds[i]`` only."""
        raise NotImplementedError

    def sigmas(self, num_steps: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(num_steps + 1,) fp32 flow times from ~1 down to 0, including the model's shift (which may
        depend on the image ``size``)."""
        raise NotImplementedError

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: EditCondition) -> torch.Tensor:
        """ONE guided velocity prediction for the target tokens, fp32, shape of ``x``."""
        raise NotImplementedError

    def decode(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
        """Clean latents (B, L, C) of images of ``size`` -> B PIL images."""
        raise NotImplementedError

    def aspect_size(self, aspect: float) -> tuple[int, int]:
        """(width, height) for a source of aspect ratio ``aspect`` (width / height): about
        ``resolution ** 2`` pixels, each side the nearest multiple of ``resolution_multiple`` (at least
        one). Adapters whose pipeline resizes differently override this."""
        area, multiple = self.resolution**2, self.resolution_multiple
        sides = ((area * aspect) ** 0.5, (area / aspect) ** 0.5)
        return tuple(max(multiple, round(side / multiple) * multiple) for side in sides)

    def working_size(self, image: Image.Image) -> tuple[int, int]:
        """(width, height) the editor edits ``image`` at: ``aspect_size`` of its aspect ratio, or the
        square ``resolution`` for an editor with a ``scope``."""
        if self.scope:
            return self._size(None)
        return self.aspect_size(self.aspect(image))

    def aspect(self, image: Image.Image) -> float:
        """The aspect ratio (width / height) of ``image`` that ``aspect_size`` is given."""
        return image.width / image.height

    def _size(self, size: tuple[int, int] | None) -> tuple[int, int]:
        return (self.resolution, self.resolution) if size is None else (int(size[0]), int(size[1]))

    def step_nfe(self, cond: EditCondition) -> int:
        """Denoiser evaluations per candidate and step under ``cond`` (guidance branches count)."""
        return self.nfe_per_step

    @property
    def lora_target_modules(self) -> list[str]:
        """Module names of the denoiser that LoRA adapts (attention projections)."""
        return ["to_q", "to_k", "to_v", "to_out.0"]

    # ----------------------------------------------------------------- shared machinery
    def prepare_sources(self, sources: Sequence[ImageLike], size: tuple[int, int] | None = None) -> list[Image.Image]:
        """Any images (paths, arrays, any mode or size) -> RGB at one working size: ``size`` if given,
        else each source's ``working_size``, which must then be the same for all (the rows of a batch
        share one latent shape): sources of different aspect ratios are one clear error, not squashed."""
        images = load_images(list(sources), "sources")
        sizes = [self._size(size) if size is not None else self.working_size(image) for image in images]
        for i, target in enumerate(sizes):
            if target != sizes[0]:
                raise EditRLError(
                    f"sources: {self.label} edits sources[0] ({images[0].width}x{images[0].height}) at {sizes[0][0]}x"
                    f"{sizes[0][1]} but sources[{i}] ({images[i].width}x{images[i].height}) at {target[0]}x{target[1]}; "
                    "one batch shares one size: edit them in separate calls or crop them to one aspect ratio")
        out = []
        for i, (image, target) in enumerate(zip(images, sizes)):
            for note in self.source_notes(image, target):
                if note not in self._warned:
                    self._warned.add(note)
                    logger.warning("%s", note)
            if image.size != target:
                logger.info("sources[%d]: resized from %dx%d to %dx%d for %s", i, *image.size, *target, self.label)
                image = image.resize(target, Image.Resampling.LANCZOS)
            out.append(image)
        return out

    @property
    def label(self) -> str:
        """The name the user chose (``load_editor``'s), else the adapter's."""
        return (self.origin or {}).get("editor") or self.name

    def source_notes(self, image: Image.Image, size: tuple[int, int] | None = None,
                     advice: str = PHOTO_ADVICE) -> list[str]:
        """What the user should know about editing ``image`` at ``size`` (default: its ``working_size``),
        each said once per editor: for an editor with a ``scope`` (the world editor) a source unlike the
        images it knows, then ``advice`` (what to do instead, in the words of the caller's interface: flags for
        the command line, the default; the demo names its own controls), and a squashed aspect ratio (a size
        other than the one ``aspect_size`` keeps)."""
        width, height = size = self._size(size) if size is not None else self.working_size(image)
        notes = []
        if image.size == size:
            return notes
        if self.scope:
            notes.append(f"editor {self.label}: {self.scope}; a {image.width}x{image.height} image is not one of its "
                         f"scenes and will not be edited meaningfully. {advice}")
        aspect = image.width / image.height
        if size != self.aspect_size(self.aspect(image)) and abs(width / height / aspect - 1) > 0.01:
            notes.append(f"editor {self.label}: works at {width}x{height} here, so a {image.width}x{image.height} source "
                         "is squashed to that aspect ratio (crop it first to avoid this)")
        return notes

    def prepare_references(self, references: list[list[ImageLike]]) -> list[list[Image.Image]]:
        """Each row's further sources, checked against ``max_sources`` (one line naming the editor), each resized
        to its own ``working_size``; the rows of a batch carry as many, of the same sizes, in the same order."""
        counts = {len(row) for row in references}
        most = max(counts, default=0) + 1
        if most > self.max_sources:
            takes = "one source image" if self.max_sources == 1 else f"at most {self.max_sources} source images"
            raise EditRLError(f"sources: {self.label} takes {takes} per prompt, got {most}; pass fewer --image or an editor "
                              "that takes several (flux2, flux2-klein, qwen-image-edit-plus, qwen-image-edit-2511)")
        if len(counts) > 1:
            raise EditRLError(f"sources: the prompts of one batch carry {sorted(c + 1 for c in counts)} source images; "
                              "one batch carries one count (edit them in separate calls)")
        columns = [self.prepare_sources([row[j] for row in references]) for j in range(most - 1)]
        return [[column[i] for column in columns] for i in range(len(references))]

    def encode(
        self, sources: Sequence[SourceLike], instructions: Sequence[str], guidance: float | None = None,
        size: tuple[int, int] | None = None,
    ) -> EditCondition:
        """Text embeddings and condition-image latents of each (source, instruction), computed once, at
        ``size`` (width, height) or else the sources' shared ``working_size`` (see ``prepare_sources``).
        A source may be a list of images (``SourceLike``) for an editor with ``max_sources`` above one."""
        if isinstance(instructions, str):
            instructions = [instructions]
        instructions = [check_instruction(s, f"instructions[{i}]") for i, s in enumerate(instructions)]
        firsts, further = split_sources(sources)
        references = self.prepare_references(further)
        images = self.prepare_sources(firsts, size)
        if len(images) != len(instructions):
            raise EditRLError(f"sources/instructions: got {len(images)} sources but {len(instructions)} instructions")
        if not images:
            raise EditRLError("sources: expected at least one source image")
        guidance = self.default_guidance if guidance is None else float(guidance)
        with torch.no_grad(), self.text_encoders_on_device():  # references go only to the editors that take them
            cond = self._encode(images, instructions, guidance, references) if any(references) else self._encode(
                images, instructions, guidance)
        cond.size = images[0].size
        cond.references = references if any(references) else []
        return cond

    def x0(self, x: torch.Tensor, sigma: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The Tweedie / x0 preview ``x - sigma v`` (exact at sigma = 0, a blurry guess early on)."""
        return x - sigma.reshape(-1, 1, 1).to(x) * v

    def sample(
        self,
        sources: Sequence[SourceLike],
        instructions: Sequence[str] | str,
        seeds: Sequence[int],
        num_steps: int | None = None,
        guidance: float | None = None,
        batch_size: int | None = None,
        on_step: OnStep | None = None,
    ) -> SampleResult:
        """Plain Euler ODE sampling of ``len(seeds)`` candidates (``on_step``: see ``OnStep``).

        ``sources``/``instructions`` hold one entry (shared by every seed) or one per seed. Matches
        the pipeline's own ``__call__`` for the same seeds and steps.
        """
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise EditRLError("seeds: expected at least one seed")
        if isinstance(instructions, str):
            instructions = [instructions]
        sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
        cond = self.encode(sources, instructions, guidance)
        if len(cond) == 1 and len(seeds) > 1:
            cond = cond.repeat_interleave(len(seeds))
        elif len(cond) != len(seeds):
            raise EditRLError(f"seeds: got {len(seeds)} seeds for {len(cond)} (source, instruction) pairs")
        sigmas = self.sigmas(num_steps, cond.size)
        batch_size = batch_size or len(seeds)
        with torch.no_grad():
            batches = [list(range(lo, min(lo + batch_size, len(seeds)))) for lo in range(0, len(seeds), batch_size)]
            latents = torch.cat([denoise(self.velocity, self.initial_noise([seeds[r] for r in rows], cond.size),
                                         cond.select(rows), sigmas, on_step=on_step) for rows in batches])
            images = self.decode(latents, cond.size)
        return SampleResult(images=images, latents=latents, nfe=len(seeds) * (len(sigmas) - 1) * self.step_nfe(cond))

    def load_lora(self, path: str, adapter_name: str | None = None) -> None:
        """Load LoRA weights in diffusers format (what ``editrl grpo`` saves) on top of the denoiser."""
        if not hasattr(self.pipe, "load_lora_weights"):
            raise EditRLError(f"lora: {self.label} cannot load LoRA weights ({type(self.pipe).__name__} has no LoRA loader)")
        if not Path(path).exists():
            raise EditRLError(f"lora: no LoRA weights at {path!r} (expected a folder or .safetensors file in diffusers format)")
        try:
            with quiet_loading():  # no "No LoRA keys ... text encoder" notice: our adapters are denoiser-only
                self.pipe.load_lora_weights(path, adapter_name=adapter_name)
        except (OSError, ValueError, KeyError) as err:
            raise EditRLError(f"lora: could not load {path!r} into {self.name}: {err}") from None
        logger.info("loaded LoRA %s into %s", path, self.name)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(resolution={self.resolution}, steps={self.default_steps}, "
            f"guidance={self.default_guidance}, device={self.device}, dtype={self.dtype})"
        )


class PackedFlowEditor(Editor):
    """Shared pieces of the rectified-flow transformers with 2x2-packed latents (FLUX.1, FLUX.2, Qwen-Image).

    Their pipelines draw noise and pack it in ``prepare_latents`` and shift their sigmas by a ``mu``
    of the image-token count (``_shift_mu``); these use the pipeline's own helpers.
    """

    @property
    def resolution_multiple(self) -> int:
        return self.pipe.vae_scale_factor * 2  # VAE downsampling, then 2x2 packing

    @property
    def _latent_channels(self) -> int:
        return self.transformer.config.in_channels // 4

    @property
    def lora_target_modules(self) -> list[str]:
        """Attention projections of both streams (image and text tokens), the Flow-GRPO choice."""
        return ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]

    def initial_noise(self, seeds: Sequence[int], size: tuple[int, int] | None = None) -> torch.Tensor:
        width, height = self._size(size)
        return self._draw_noise(len(seeds), height, width, seed_generators(seeds)).to(self.device)

    def _draw_noise(self, batch: int, height: int, width: int, generators: list[torch.Generator]) -> torch.Tensor:
        """The pipeline's ``prepare_latents`` without an image: packed fp32 noise, drawn on the CPU."""
        return self.pipe.prepare_latents(
            None, batch, self._latent_channels, height, width, torch.float32, torch.device("cpu"), generators
        )[0]

    def _shift_mu(self, tokens: int, num_steps: int) -> float:
        """The scheduler's ``mu`` for ``tokens`` image tokens: FLUX.1's and Qwen-Image's ``calculate_shift``."""
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        config = self.pipe.scheduler.config
        return calculate_shift(
            tokens, config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5), config.get("max_shift", 1.15),
        )

    def sigmas(self, num_steps: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
        num_steps = int(num_steps or self.default_steps)
        width, height = self._size(size)
        tokens = (width // self.resolution_multiple) * (height // self.resolution_multiple)  # the pipelines' image_seq_len
        mu = self._shift_mu(tokens, num_steps)
        config = self.pipe.scheduler.config
        scheduler = type(self.pipe.scheduler).from_config(config)  # a private copy: set_timesteps mutates it
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / num_steps, num_steps), mu=mu, device="cpu")
        return scheduler.sigmas.to(torch.float32)


class PaddedTextFlowEditor(PackedFlowEditor):
    """The FLUX editors (FLUX.1-Kontext, FLUX.2): their text encoders pad every prompt to ``max_sequence_length``
    tokens, an adapter setting (shorter: faster, as the world editor trained for 128)."""

    def __init__(self, pipe, resolution=None, default_steps=None, default_guidance=None, max_sequence_length: int = 512):
        super().__init__(pipe, resolution, default_steps, default_guidance)
        self.max_sequence_length = max_sequence_length


class InContextFlowEditor(PackedFlowEditor):
    """Editors whose condition images' packed tokens follow the target's in one sequence (their predictions discarded)
    and whose guidance is either an embedding (FLUX.2 [dev]) or true CFG over text branches run as one batch
    (FLUX.2 [klein], LongCat-Image-Edit): ``cond.batched`` holds ``prompt_embeds``, ``image_latents`` and, with
    CFG, ``negative_embeds``; ``cond.shared`` the position ids ``text_ids``/``img_ids`` and ``guidance``."""

    def _branches(self, cond: EditCondition) -> list[torch.Tensor]:
        """The text embeddings of each forward pass per step: the prompt's, then the negative prompt's under CFG."""
        negative = cond.batched.get("negative_embeds")
        return [cond.batched["prompt_embeds"]] + ([] if negative is None else [negative])

    def step_nfe(self, cond: EditCondition) -> int:
        return len(self._branches(cond))

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: EditCondition) -> torch.Tensor:
        dtype = self.dtype
        batch, tokens = x.shape[:2]
        branches = self._branches(cond)
        hidden = torch.cat([x.to(dtype), cond.batched["image_latents"].to(dtype)], dim=1).repeat(len(branches), 1, 1)
        guidance = None
        if getattr(self.transformer.config, "guidance_embeds", False):
            guidance = torch.full((batch * len(branches),), cond.shared["guidance"], device=x.device, dtype=torch.float32)
        out = self.transformer(
            hidden_states=hidden,
            timestep=sigma.to(device=x.device, dtype=dtype).repeat(len(branches)),
            guidance=guidance,
            encoder_hidden_states=torch.cat(branches).to(dtype),
            txt_ids=cond.shared["text_ids"],
            img_ids=cond.shared["img_ids"],
            return_dict=False,
        )[0][:, :tokens].float()
        if len(branches) == 1:
            return out
        positive, negative = out.chunk(2)
        return negative + cond.shared["guidance"] * (positive - negative)
