"""``ClipModel``: the one interface every CLIP backend gives the engine and the analysis.

A backend subclass wraps its library's module and says five things: how to encode
normalised pixels, how to encode token ids, its shape facts, which of its modules run
sequence-first, and its default hook pattern. Everything else (normalisation, the one
resize rule, text batching, hook points and capture, the manifest entry) lives here, so it
is the same for every backend.
"""

from __future__ import annotations

import contextlib
from importlib.metadata import PackageNotFoundError, version
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from clipxai.errors import ClipxaiError
from clipxai.models.hooks import DEFAULT_HOOKS, match_names, pool_activation

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipModel:
    """A frozen CLIP with the few things clipxai needs from it, whatever library holds it."""

    backend = "base"
    #: True when the text tower is causal and pools at the end-of-text token, so the padding
    #: after that token changes nothing and batches may be cut at their longest text.
    trims_text = False
    #: How image and text embeddings are compared when the model was trained.
    similarity = "cosine-softmax"
    #: The library the backend runs on: (name in run.json, its distribution on PyPI).
    library: tuple[str, str] | None = None

    def __init__(self, module: nn.Module, name: str, sha256: str, device: torch.device, tokenizer,
                 mean=OPENAI_MEAN, std=OPENAI_STD, source: str = ""):
        self.module = module.eval().requires_grad_(False)
        self.name = name
        self.sha256 = sha256
        self.device = device
        self.tokenizer = tokenizer
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.source = source
        self._mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)

    # -- what a backend provides ----------------------------------------------------------
    @property
    def input_resolution(self) -> int:
        raise NotImplementedError

    @property
    def context_length(self) -> int:
        raise NotImplementedError

    @property
    def embed_dim(self) -> int:
        raise NotImplementedError

    @property
    def default_hooks(self) -> str:
        """This backend's pattern for the image tower's residual blocks."""
        return DEFAULT_HOOKS

    def _encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Features of normalised images already at the input resolution, in the model's dtype."""
        raise NotImplementedError

    def _encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Features of a batch of token ids (possibly cut short when ``trims_text``)."""
        raise NotImplementedError

    def _sequence_first(self, name: str) -> bool:
        """Whether the module ``name`` outputs (tokens, batch, width)."""
        return False

    def _logit_scale_param(self) -> torch.Tensor:
        return self.module.logit_scale

    def versions(self) -> dict[str, str]:
        """The version of the library this backend runs on (none when it is not installed as a package)."""
        if self.library is None:
            return {}
        name, distribution = self.library
        with contextlib.suppress(PackageNotFoundError):
            return {name: version(distribution)}
        return {}

    # -- shape facts ----------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    @property
    def logit_scale(self) -> float:
        """The factor CLIP multiplies cosine similarities by to make logits (exp of its learned log-scale)."""
        return float(self._logit_scale_param().detach().float().exp().reshape(-1)[0])

    @property
    def logit_bias(self) -> float | None:
        """The bias SigLIP-style models add to their logits; None for softmax-trained CLIPs."""
        bias = getattr(self.module, "logit_bias", None)
        return None if bias is None else float(bias.detach().float().reshape(-1)[0])

    def parameters(self):
        return self.module.parameters()

    # -- images ---------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] standardised with the model's own mean and std."""
        return (images - self._mean) / self._std

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Image features (not unit length) in fp32; ``images`` are [B,3,R,R] in [0,1]."""
        x = self.normalize(images) if normalize else images
        return self._encode_pixels(x.to(self.dtype)).float()

    def fit_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images of any size resized to the model's input (the one resize rule: bilinear, antialiased)."""
        r = self.input_resolution
        if images.shape[-2:] == (r, r):
            return images
        return F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False, antialias=True)

    def embed_images(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Features of whole images of any size (resized by ``fit_input``), as recorded in snapshots."""
        return self.encode_image(self.fit_input(images), normalize=normalize)

    # -- text -----------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids of ``texts`` by the model's own tokenizer, padded to the whole context."""
        return self.tokenizer(list(texts), self.context_length).to(self.device)

    def vocabulary(self) -> list[str]:
        """The model's own tokenizer's whole-word tokens (alphabetic, 2+ characters), sorted."""
        return self.tokenizer.words()

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256, full_context: bool = False) -> torch.Tensor:
        """Text features (not unit length) in fp32, one row per text.

        For causal text towers that read their output at the end-of-text token
        (``trims_text``) the padding after it changes nothing but rounding: texts are batched
        by length and each batch is cut at its longest text (short words encode ~10x faster
        than the full context). ``full_context`` pads every text to the whole context as the
        original libraries do (features differ by ~1e-6; the original experiment's recipe
        needs them bit for bit). Text towers that read every position (SigLIP) always see the
        whole context, so the flag changes nothing for them.
        """
        texts = list(texts)
        out = torch.empty(len(texts), self.embed_dim, dtype=torch.float32, device=self.device)
        if not texts:
            return out
        tokens = self.tokenize(texts)
        if full_context or not self.trims_text:
            for start in range(0, len(texts), batch_size):
                out[start:start + batch_size] = self._encode_tokens(tokens[start:start + batch_size]).float()
            return out
        lengths = self.tokenizer.lengths(tokens).to(self.device)
        order = lengths.argsort(stable=True).tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            length = int(lengths[idx].max())
            out[idx] = self._encode_tokens(tokens[idx, :length]).float()
        return out

    # -- soft tokens (CLIP's opinion) ------------------------------------------------------
    def token_embeddings(self) -> torch.Tensor:
        """(vocabulary, width): the text tower's token-embedding table, which soft tokens mix."""
        raise ClipxaiError(f"Text ascent needs a text tower that takes token embeddings, which clipxai offers for "
                           f"OpenAI-format, open_clip and Hugging Face CLIP models, not for {self.name} ({self.backend}).")

    def encode_token_embeddings(self, embeds: torch.Tensor, eot_positions: torch.Tensor) -> torch.Tensor:
        """Text features (fp32, not unit length, with gradient) of token embeddings given directly.

        ``embeds`` (batch, length, width) stands where the token-embedding lookup would be (the
        start token first; length at most ``context_length``), ``eot_positions`` (batch,) says
        where each row's end-of-text token is, the position a causal CLIP text tower reads.
        ``encode_token_embeddings(token_embeddings()[ids], ...)`` equals ``encode_text``.
        """
        self.token_embeddings()  # says which models are not supported
        raise NotImplementedError

    # -- hook points ----------------------------------------------------------------------
    def hook_points(self, pattern: str | None = None) -> list[str]:
        """Dotted module names matching ``pattern`` (comma-separated patterns allowed).

        ``None``, ``"default"`` and ``DEFAULT_HOOKS`` all mean this backend's image-tower
        blocks (``default_hooks``), so one configuration records the same layers of any model.
        """
        if pattern is None or pattern.strip() in ("default", DEFAULT_HOOKS):
            pattern = self.default_hooks
        return match_names((n for n, _ in self.module.named_modules()), pattern)

    @contextlib.contextmanager
    def capture(self, names: list[str], batch: int, full: bool = False) -> Iterator[dict]:
        """Within the block, forward passes fill the yielded dict: name -> batch-first activation.

        Pooled activations are (batch, width), full ones (batch, tokens, width), whatever the
        backend's own layout.
        """
        store: dict[str, torch.Tensor] = {}
        modules = dict(self.module.named_modules())
        handles = []
        for name in names:
            def hook(_mod, _inp, out, _name=name, _seq=self._sequence_first(name)):
                store[_name] = pool_activation(out, batch, full, sequence_first=_seq)
            handles.append(modules[name].register_forward_hook(hook))
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def hooked(self, names=(), heads=()):
        """Within the block, forward passes fill the yielded ``LiveActivations``, graph kept.

        ``outputs[name]`` is each named module's output, batch-first (batch, tokens, width);
        ``heads[name]`` each attention head's output in the named block, (batch, heads,
        tokens, head_dim). What objective terms on neurons, channels, directions and heads
        read (``capture`` detaches; this does not). An unknown name is one sentence.
        """
        from clipxai.models.live import hooked  # noqa: PLC0415
        return hooked(self.module, self.name, names, heads, self._sequence_first)

    def describe(self) -> dict:
        """What the run manifest records about the model."""
        return {
            "backend": self.backend,
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "input_resolution": self.input_resolution,
            "context_length": self.context_length,
            "embed_dim": self.embed_dim,
            "dtype": str(self.dtype).replace("torch.", ""),
            "mean": list(self.mean),
            "std": list(self.std),
            "tokenizer": getattr(self.tokenizer, "name", type(self.tokenizer).__name__),
            "similarity": self.similarity,
            "default_hooks": self.default_hooks,
            "versions": self.versions(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, backend={self.backend!r}, device={str(self.device)!r})"
