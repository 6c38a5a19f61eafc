"""Hugging Face ``transformers`` models: ``CLIPModel`` and ``SiglipModel``.

``hf:ID`` reads a hub id from the local cache only (``local_files_only``); ``hf:DIR`` reads a
``save_pretrained`` folder; ``random:hf:ARCH`` builds a ``CLIPModel`` shaped like one of
OpenAI's architectures with random weights. Mean and std come from the folder's
``preprocessor_config.json`` (CLIP's or SigLIP's defaults without one); the tokenizer from its
tokenizer files (OpenAI's CLIP BPE for a CLIP folder without them).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from clipxai.errors import ModelLoadError
from clipxai.models.base import OPENAI_MEAN, OPENAI_STD, ClipModel
from clipxai.models.offline import cached_snapshot, hf_cache_dir, hub_offline, repo_folder
from clipxai.models.placement import place, resolve_device
from clipxai.models.tokenizers import HFTokenizer, clip_bpe_for_hf
from clipxai.models.weights import file_sha256, state_dict_sha256

EXTRA_HINT = "pip install 'clipxai[hf]'"
SIGLIP_MEAN = SIGLIP_STD = (0.5, 0.5, 0.5)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")
SUPPORTED = {"clip": "CLIPModel", "siglip": "SiglipModel"}


def import_transformers():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import transformers  # noqa: PLC0415
    except ImportError as err:
        raise ModelLoadError(f"Hugging Face models need the transformers package ({EXTRA_HINT}).") from err
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # loading a model is not a task worth a bar here
    return transformers


class HFClip(ClipModel):
    """A transformers ``CLIPModel`` or ``SiglipModel``; its encoder layers run batch-first."""

    backend = "hf"
    library = ("transformers", "transformers")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.siglip = type(self.module).__name__.startswith("Siglip")
        self.trims_text = not self.siglip  # SigLIP reads the last position: padding matters
        self.similarity = "sigmoid" if self.siglip else "cosine-softmax"

    @property
    def _cfg(self):
        return self.module.config

    @property
    def input_resolution(self) -> int:
        return int(self._cfg.vision_config.image_size)

    @property
    def context_length(self) -> int:
        return int(self._cfg.text_config.max_position_embeddings)

    @property
    def embed_dim(self) -> int:
        if self.siglip:
            return int(self.module.text_model.head.out_features)
        return int(self._cfg.projection_dim)

    @property
    def default_hooks(self) -> str:
        return "vision_model.encoder.layers.*"

    def _encode_pixels(self, x):
        pooled = self.module.vision_model(pixel_values=x).pooler_output
        return pooled if self.siglip else self.module.visual_projection(pooled)

    def _encode_tokens(self, tokens):
        pooled = self.module.text_model(input_ids=tokens).pooler_output
        return pooled if self.siglip else self.module.text_projection(pooled)

    def token_embeddings(self) -> torch.Tensor:
        if self.siglip:
            return super().token_embeddings()  # SigLIP's text tower is not causal: one sentence
        return self.module.text_model.embeddings.token_embedding.weight

    def encode_token_embeddings(self, embeds, eot_positions):
        self.token_embeddings()
        try:
            from transformers.masking_utils import create_causal_mask  # noqa: PLC0415
        except ImportError:
            return super().encode_token_embeddings(embeds, eot_positions)
        text = self.module.text_model
        x = text.embeddings(inputs_embeds=embeds.to(self.dtype))
        mask = create_causal_mask(config=text.config, inputs_embeds=x, attention_mask=None, cache=None)
        x = text.encoder(inputs_embeds=x, attention_mask=mask, is_causal=True).last_hidden_state
        x = text.final_layer_norm(x)
        return self.module.text_projection(x[torch.arange(x.shape[0], device=x.device), eot_positions]).float()


def wrap_hf(module: nn.Module, name: str, device, tokenizer=None, sha256: str | None = None,
            source: str = "in-memory", mean=None, std=None) -> HFClip:
    """A transformers CLIPModel/SiglipModel as a ``ClipModel``."""
    dev = resolve_device(device)
    siglip = type(module).__name__.startswith("Siglip")
    if tokenizer is None:
        if siglip:
            raise ModelLoadError(f"The SigLIP model '{name}' needs its own tokenizer files beside its weights.")
        tokenizer = clip_bpe_for_hf()
    module = place(module, dev)
    sha = sha256 or state_dict_sha256(module.state_dict())
    eos = getattr(tokenizer, "eos_token_id", None)
    return HFClip(module, name=name, sha256=sha, device=dev, tokenizer=HFTokenizer(tokenizer, eos),
                  mean=mean or (SIGLIP_MEAN if siglip else OPENAI_MEAN),
                  std=std or (SIGLIP_STD if siglip else OPENAI_STD), source=source)


# ---------------------------------------------------------------------------------------
# Loaders

def is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def load_hf(rest: str, device, spec: str) -> HFClip:
    """``hf:DIR`` (an existing folder, or any path starting with / . ~) or ``hf:ID`` from the cache."""
    path = Path(rest).expanduser()
    if path.is_dir() or rest.startswith(("/", ".", "~")):
        return load_hf_dir(path, device, spec)
    snapshot = cached_snapshot(rest, "config.json")
    if snapshot is None:
        raise ModelLoadError(
            f"The Hugging Face model '{rest}' is not in the local cache {hf_cache_dir()}; on a machine with "
            f"network run `hf download {rest}` and copy {repo_folder(rest)} to the same place here "
            f"(or pass hf:DIR with a save_pretrained folder)."
        )
    return load_hf_dir(snapshot, device, spec, repo=rest)


def _weights(folder: Path) -> list[Path]:
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            if name.endswith(".index.json"):
                try:
                    shards = sorted(set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()))
                    return [folder / s for s in shards]
                except (ValueError, OSError, KeyError, TypeError, AttributeError) as err:
                    raise ModelLoadError(f"{path} is not a readable weight index (JSON with a weight_map of "
                                         f"tensor names to shard files).") from err
            return [path]
    return []


def load_hf_dir(folder: Path, device, spec: str, repo: str | None = None) -> HFClip:
    what = f"The Hugging Face model '{repo}' in {folder}" if repo else f"The folder {folder}"
    if not folder.is_dir():
        raise ModelLoadError(f"The Hugging Face model folder {folder} does not exist.")
    if not is_hf_dir(folder):
        raise ModelLoadError(f"{what} holds no config.json; pass a folder written by save_pretrained.")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise ModelLoadError(f"{folder / 'config.json'} is not valid JSON.") from err
    kind = config.get("model_type", "")
    if kind == "siglip2":
        raise ModelLoadError(
            f"{what} is a SigLIP 2 model, whose variable-resolution patches with masks do not fit "
            f"clipxai's fixed-resolution image input; use a SigLIP or CLIP model."
        )
    if kind not in SUPPORTED:
        raise ModelLoadError(
            f"{what} is a '{kind}' model; clipxai reads CLIP and SigLIP models (model_type clip or siglip)."
        )
    weights = _weights(folder)
    missing = [w for w in weights if not w.is_file()]
    if not weights or missing:
        name = missing[0].name if missing else "model.safetensors"
        raise ModelLoadError(f"{what} lacks its weights; place {name} in {folder}.")
    transformers = import_transformers()
    cls = getattr(transformers, SUPPORTED[kind])
    with hub_offline():
        try:
            module = cls.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        except Exception as err:  # noqa: BLE001
            raise ModelLoadError(f"{what} could not be loaded ({_first_line(err)}).") from err
        tokenizer = _tokenizer(transformers, folder, kind, what)
    mean, std = _preprocess(folder)
    sha = file_sha256(weights[0]) if len(weights) == 1 else _joined_sha(weights)
    return wrap_hf(module, name=spec, device=device, tokenizer=tokenizer, sha256=sha,
                   source=str(weights[0].resolve() if len(weights) == 1 else folder.resolve()), mean=mean, std=std)


def _tokenizer(transformers, folder: Path, kind: str, what: str):
    if not any((folder / n).is_file() for n in TOKENIZER_FILES):
        if kind == "siglip":
            raise ModelLoadError(f"{what} holds no tokenizer files; place the model's tokenizer files beside its config.")
        return clip_bpe_for_hf()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # noqa: BLE001  (e.g. sentencepiece missing for SigLIP)
        raise ModelLoadError(f"The tokenizer in {folder} could not be loaded ({_first_line(err)}).") from err


def _preprocess(folder: Path):
    try:
        pp = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    return pp.get("image_mean"), pp.get("image_std")


def _joined_sha(paths: list[Path]) -> str:
    import hashlib  # noqa: PLC0415
    h = hashlib.sha256()
    for p in paths:
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200].rstrip(".")


# ---------------------------------------------------------------------------------------
# Configurations built from shapes

def clip_config(shape: dict, hidden_act: str = "quick_gelu") -> dict:
    """``CLIPConfig`` keyword arguments for an OpenAI-style shape (``ARCHITECTURES`` entries)."""
    vw, tw = shape["vision_width"], shape["transformer_width"]
    return dict(
        projection_dim=shape["embed_dim"],
        text_config=dict(vocab_size=shape["vocab_size"], hidden_size=tw, intermediate_size=4 * tw,
                         num_hidden_layers=shape["transformer_layers"], num_attention_heads=shape["transformer_heads"],
                         max_position_embeddings=shape["context_length"], hidden_act=hidden_act,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=shape["embed_dim"]),
        vision_config=dict(hidden_size=vw, intermediate_size=4 * vw, num_hidden_layers=shape["vision_layers"],
                           num_attention_heads=vw // 64, image_size=shape["image_resolution"],
                           patch_size=shape["vision_patch_size"], hidden_act=hidden_act,
                           projection_dim=shape["embed_dim"]),
    )


def shape_of_hf_state_dict(sd: dict) -> dict:
    """An OpenAI-style shape read from a Hugging Face CLIP state dict (heads = width // 64)."""
    def layers(prefix):
        return len({k.split(".")[3] for k in sd if k.startswith(prefix)})
    patch = sd["vision_model.embeddings.patch_embedding.weight"]
    positions = sd["vision_model.embeddings.position_embedding.weight"].shape[0]
    grid = round((positions - 1) ** 0.5)
    tw = sd["text_model.embeddings.token_embedding.weight"].shape[1]
    return dict(embed_dim=sd["visual_projection.weight"].shape[0], image_resolution=grid * patch.shape[-1],
                vision_layers=layers("vision_model.encoder.layers."), vision_width=patch.shape[0],
                vision_patch_size=patch.shape[-1],
                context_length=sd["text_model.embeddings.position_embedding.weight"].shape[0],
                vocab_size=sd["text_model.embeddings.token_embedding.weight"].shape[0],
                transformer_width=tw, transformer_heads=max(tw // 64, 1),
                transformer_layers=layers("text_model.encoder.layers."))


def build_clip_model(shape: dict, hidden_act: str = "quick_gelu"):
    """A randomly initialised transformers ``CLIPModel`` of an OpenAI-style shape."""
    transformers = import_transformers()
    return transformers.CLIPModel(transformers.CLIPConfig(**clip_config(shape, hidden_act))).float()


def load_hf_state_dict(sd: dict, path: Path, device) -> HFClip:
    """A ``.safetensors`` file in Hugging Face's CLIP layout, with a config.json beside it or without."""
    if is_hf_dir(path.parent) and path.name in WEIGHT_FILES:
        return load_hf_dir(path.parent, device, path.name)
    try:
        module = build_clip_model(shape_of_hf_state_dict(sd))
        module.load_state_dict(sd, strict=False)
        missing, unexpected = _key_mismatch(module, sd)
    except (KeyError, RuntimeError, ValueError, IndexError) as err:
        raise ModelLoadError(f"{path} holds Hugging Face CLIP weights whose shapes do not fit together "
                             f"({_first_line(err)}).") from err
    if missing or unexpected:
        raise ModelLoadError(f"{path} is not a complete Hugging Face CLIP state dict "
                             f"({'missing ' + missing[0] if missing else 'unexpected ' + unexpected[0]}).")
    return wrap_hf(module, name=path.name, device=device, sha256=file_sha256(path), source=str(path.resolve()))


def _key_mismatch(module: nn.Module, sd: dict) -> tuple[list[str], list[str]]:
    own = set(module.state_dict())
    return sorted(own - set(sd)), sorted(set(sd) - own - {"text_model.embeddings.position_ids",
                                                           "vision_model.embeddings.position_ids"})


def random_hf(shape: dict, device, spec: str, seed: int = 0) -> HFClip:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_clip_model(shape)
    return wrap_hf(module, name=spec, device=device, sha256=f"random-hf-{spec.rsplit(':', 1)[-1]}-seed{seed}",
                   source="random init")
