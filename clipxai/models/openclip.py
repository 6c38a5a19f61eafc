"""open_clip models: a pretrained tag from the local cache, a local folder, or random weights.

``openclip:ARCH/TAG`` names one of open_clip's pretrained tags (``open_clip.list_pretrained()``);
its weights are read from the Hugging Face hub cache (or ``~/.cache/clip`` for tags hosted
elsewhere), never downloaded. ``openclip:DIR`` is open_clip's ``local-dir`` layout: a folder
holding ``open_clip_config.json`` (``{"model_cfg": ..., "preprocess_cfg": ...}``) and the
weights; ``openclip:hf-hub:ID`` is such a folder cached from the hub.
``random:openclip:ARCH`` builds any open_clip architecture with random weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from clipxai.errors import ModelLoadError
from clipxai.models.base import OPENAI_MEAN, OPENAI_STD, ClipModel
from clipxai.models.offline import (
    cached_file,
    cached_snapshot,
    hf_cache_dir,
    hub_offline,
    openclip_url_cache_dir,
    repo_folder,
)
from clipxai.models.placement import place, resolve_device
from clipxai.models.tokenizers import OpenClipTokenizer
from clipxai.models.weights import file_sha256, state_dict_sha256

EXTRA_HINT = "pip install 'clipxai[openclip]'"
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth",
                "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")


@contextlib.contextmanager
def _quiet():
    """open_clip reports through the root logger (and would configure it); keep its notes out of our output."""
    handler = logging.NullHandler()
    logging.root.addHandler(handler)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
        logging.root.removeHandler(handler)


def import_open_clip():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import open_clip  # noqa: PLC0415
    except ImportError as err:
        raise ModelLoadError(f"open_clip models need the open_clip package ({EXTRA_HINT}).") from err
    return open_clip


class OpenClipModel(ClipModel):
    """An open_clip ``CLIP`` or ``CustomTextCLIP``; its transformers run batch-first."""

    backend = "openclip"
    library = ("open_clip", "open_clip_torch")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        m = self.module
        self._text = m.text if hasattr(m, "text") else m
        self.trims_text = (type(m).__name__ == "CLIP" and getattr(m, "attn_mask", None) is not None
                           and getattr(m, "text_pool_type", "") in ("argmax", "eos")
                           and getattr(self.tokenizer, "simple", False))
        if getattr(m, "logit_bias", None) is not None:
            self.similarity = "sigmoid"
        out_dim = getattr(m.visual, "output_dim", None)
        self._embed_dim = int(out_dim) if out_dim else int(self._encode_tokens(self.tokenize([""])).shape[-1])

    @property
    def input_resolution(self) -> int:
        size = self.module.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def context_length(self) -> int:
        return int(getattr(self.module, "context_length", None) or self._text.context_length)

    @property
    def embed_dim(self) -> int:
        return self._embed_dim

    @property
    def default_hooks(self) -> str:
        visual = self.module.visual
        if hasattr(getattr(visual, "transformer", None), "resblocks"):
            return "visual.transformer.resblocks.*"
        trunk = getattr(visual, "trunk", None)
        for part in ("blocks", "stages"):
            if hasattr(trunk, part):
                return f"visual.trunk.{part}.*"
        return "visual.layer*"  # ModifiedResNet: its four stages

    def _encode_pixels(self, x):
        return self.module.encode_image(x)

    def _encode_tokens(self, tokens):
        m = self.module
        length = tokens.shape[1]
        if not self.trims_text or length == self.context_length:
            return m.encode_text(tokens)
        # CLIP.encode_text with the positions and causal mask cut to the batch's length.
        from open_clip.transformer import text_global_pool  # noqa: PLC0415
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = text_global_pool(x, tokens, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
        if m.text_projection is None:
            return x
        return m.text_projection(x) if isinstance(m.text_projection, nn.Linear) else x @ m.text_projection

    def token_embeddings(self) -> torch.Tensor:
        m = self.module
        if not (hasattr(m, "token_embedding") and getattr(m, "attn_mask", None) is not None
                and getattr(m, "text_pool_type", "") in ("argmax", "eos")):
            return super().token_embeddings()  # a text tower that is not CLIP's causal one: one sentence
        return m.token_embedding.weight

    def encode_token_embeddings(self, embeds, eot_positions):
        self.token_embeddings()
        m = self.module
        n = embeds.shape[1]
        cast = m.transformer.get_cast_dtype()
        x = embeds.to(cast) + m.positional_embedding[:n].to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:n, :n]))
        x = x[torch.arange(x.shape[0], device=x.device), eot_positions]
        if m.text_projection is not None:
            x = m.text_projection(x) if isinstance(m.text_projection, nn.Linear) else x @ m.text_projection
        return x.float()

    def _sequence_first(self, name: str) -> bool:
        if name.startswith("visual.transformer"):
            return not getattr(self.module.visual.transformer, "batch_first", True)
        if name == "transformer" or name.startswith("transformer."):
            return not getattr(self.module.transformer, "batch_first", True)
        return False


def wrap_openclip(module: nn.Module, name: str, device, tokenizer=None, sha256: str | None = None,
                  source: str = "in-memory", mean=None, std=None) -> OpenClipModel:
    """An open_clip module as a ``ClipModel`` (its mean/std from its preprocess config)."""
    dev = resolve_device(device)
    pp = getattr(module.visual, "preprocess_cfg", None) or {}
    mean = mean or pp.get("mean") or OPENAI_MEAN
    std = std or pp.get("std") or OPENAI_STD
    if tokenizer is None:
        tokenizer = import_open_clip().SimpleTokenizer(context_length=getattr(module, "context_length", 77))
    module = place(module, dev)
    sha = sha256 or state_dict_sha256(module.state_dict())
    return OpenClipModel(module, name=name, sha256=sha, device=dev, tokenizer=OpenClipTokenizer(tokenizer),
                         mean=mean, std=std, source=source)


# ---------------------------------------------------------------------------------------
# Loaders

def is_openclip_dir(path: Path) -> bool:
    return (path / "open_clip_config.json").is_file()


def load_openclip(rest: str, device, spec: str) -> OpenClipModel:
    """``openclip:DIR`` (an existing folder, or any path starting with / . ~), ``openclip:hf-hub:ID``
    (a hub repository in open_clip's layout, from the cache) or ``openclip:ARCH/TAG``."""
    if rest.startswith("hf-hub:"):
        repo = rest[len("hf-hub:"):]
        snapshot = cached_snapshot(repo, "open_clip_config.json")
        if snapshot is None:
            raise ModelLoadError(
                f"The open_clip repository '{repo}' is not in the local cache {hf_cache_dir()}; on a machine with "
                f"network run `hf download {repo}` and copy {repo_folder(repo)} to the same place here."
            )
        return load_openclip_dir(snapshot, device, spec)
    path = Path(rest).expanduser()
    if path.is_dir() or rest.startswith(("/", ".", "~")):
        return load_openclip_dir(path, device, spec)
    if "/" not in rest:
        raise ModelLoadError(
            f"'{spec}' names neither a folder nor ARCH/TAG; write openclip:ARCH/TAG "
            f"(e.g. openclip:ViT-B-32/laion2b_s34b_b79k) or openclip:PATH/TO/FOLDER."
        )
    arch, tag = rest.rsplit("/", 1)
    return load_openclip_tag(arch, tag, device, spec)


def load_openclip_dir(folder: Path, device, spec: str) -> OpenClipModel:
    config = folder / "open_clip_config.json"
    if not folder.is_dir():
        raise ModelLoadError(f"The open_clip model folder {folder} does not exist.")
    if not config.is_file():
        raise ModelLoadError(
            f"The folder {folder} holds no open_clip_config.json; an open_clip folder needs it beside its weights "
            f"(open_clip's local-dir layout)."
        )
    weights = next((folder / n for n in WEIGHT_NAMES if (folder / n).is_file()), None)
    if weights is None:
        raise ModelLoadError(
            f"The open_clip folder {folder} holds no weights; place open_clip_model.safetensors "
            f"(or open_clip_pytorch_model.bin) beside its open_clip_config.json."
        )
    try:
        json.loads(config.read_text(encoding="utf-8"))["model_cfg"]
    except (ValueError, KeyError, OSError) as err:
        raise ModelLoadError(f"{config} is not an open_clip config (it needs a model_cfg entry).") from err
    open_clip = import_open_clip()
    with hub_offline(), _quiet():
        try:
            module = open_clip.create_model(f"local-dir:{folder}")
        except Exception as err:  # noqa: BLE001
            raise ModelLoadError(f"The open_clip folder {folder} could not be loaded ({_first_line(err)}).") from err
        tokenizer = _tokenizer(open_clip, f"local-dir:{folder}", spec)
    return wrap_openclip(module, name=spec, device=device, tokenizer=tokenizer, sha256=file_sha256(weights),
                         source=str(weights.resolve()))


def tag_file(pcfg: dict) -> tuple[Path | None, str]:
    """(cached weights file or None, where it would be) for a pretrained tag's config."""
    if pcfg.get("file"):
        return (Path(pcfg["file"]) if Path(pcfg["file"]).is_file() else None), pcfg["file"]
    hub = pcfg.get("hf_hub", "")
    if hub:
        # The file open_clip would fetch: its safetensors twin first, as download_pretrained_from_hf does.
        repo, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        if filename == "open_clip_pytorch_model.bin":
            names = ["open_clip_model.safetensors", filename]
        elif filename.endswith((".bin", ".pth")):
            names = [filename[:-4] + ".safetensors", filename]
        else:
            names = [filename]
        for name in names:
            found = cached_file(repo, name)
            if found is not None:
                return found, ""
        where = (f"{names[0]} of the hub repository {repo} in {hf_cache_dir()} "
                 f"(on a machine with network: `hf download {repo} {names[0]}`, then copy "
                 f"{repo_folder(repo)} here)")
        return None, where
    url = pcfg.get("url", "")
    target = openclip_url_cache_dir() / os.path.basename(url)
    return (target if target.is_file() else None), f"{os.path.basename(url)} from {url} in {target.parent}"


def load_openclip_tag(arch: str, tag: str, device, spec: str) -> OpenClipModel:
    open_clip = import_open_clip()
    arch = arch.replace("/", "-")
    if arch not in open_clip.list_models():
        raise ModelLoadError(f"'{arch}' is not an open_clip architecture (see open_clip.list_models()).")
    pcfg = open_clip.get_pretrained_cfg(arch, tag)
    if not pcfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ModelLoadError(f"open_clip has no pretrained tag '{tag}' for {arch}; its tags are {', '.join(tags) or 'none'}.")
    path, where = tag_file(pcfg)
    if path is None:
        raise ModelLoadError(f"The open_clip weights {arch}/{tag} are not on this machine; place {where}.")
    with hub_offline(), _quiet():
        try:
            module = open_clip.create_model(arch, pretrained=str(path))
        except Exception as err:  # noqa: BLE001
            raise ModelLoadError(f"The open_clip weights {path} could not be loaded into {arch} ({_first_line(err)}).") from err
        tokenizer = _tokenizer(open_clip, arch, spec)
    return wrap_openclip(module, name=spec, device=device, tokenizer=tokenizer, sha256=file_sha256(path),
                         source=str(path), mean=pcfg.get("mean"), std=pcfg.get("std"))


def random_openclip(arch: str, device, spec: str, seed: int = 0) -> OpenClipModel:
    open_clip = import_open_clip()
    arch = arch.replace("/", "-")
    if arch not in open_clip.list_models():
        raise ModelLoadError(f"'{spec}' names no open_clip architecture (see open_clip.list_models()).")
    with hub_offline(), _quiet(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = open_clip.create_model(arch)
        except Exception as err:  # noqa: BLE001  (towers whose config lives on the hub)
            raise ModelLoadError(f"open_clip could not build {arch} offline ({_first_line(err)}).") from err
        tokenizer = _tokenizer(open_clip, arch, spec)
    return wrap_openclip(module, name=spec, device=device, tokenizer=tokenizer,
                         sha256=f"random-openclip-{arch}-seed{seed}", source="random init")


def _tokenizer(open_clip, name: str, spec: str):
    try:
        return open_clip.get_tokenizer(name)
    except Exception as err:  # noqa: BLE001  (a hub tokenizer that is not cached)
        raise ModelLoadError(
            f"The tokenizer of '{spec}' is not on this machine ({_first_line(err)}); place its Hugging Face "
            f"tokenizer files in {hf_cache_dir()}."
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200].rstrip(".")
