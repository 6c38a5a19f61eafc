"""Converting an OpenAI-format CLIP into open_clip's and Hugging Face's layouts.

The same weights in three libraries give the same features, which is how the loaders are
proven right; the converters are also a way to bring a fine-tuned OpenAI-format checkpoint
to either library:

    from clipxai.models.convert import openai_as, write_openclip_dir, write_hf_dir
    sd = torch.load("my-finetune.pt")            # an OpenAI-format state dict (ViT only)
    write_openclip_dir(sd, "my-finetune-openclip")   # --model openclip:my-finetune-openclip
    write_hf_dir(sd, "my-finetune-hf")               # --model hf:my-finetune-hf
    module = openai_as(sd, "hf")                     # or in memory: wrap_module(module)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from clipxai.errors import ModelLoadError
from clipxai.models.base import OPENAI_MEAN, OPENAI_STD
from clipxai.models.weights import NON_WEIGHT_KEYS


def openai_shape(sd: dict) -> dict:
    """The architecture of an OpenAI-format ViT state dict, as ``ARCHITECTURES`` writes it."""
    if "visual.proj" not in sd:
        raise ModelLoadError("Only OpenAI-format ViT models can be converted (this one has no visual.proj).")
    width = sd["visual.conv1.weight"].shape[0]
    patch = sd["visual.conv1.weight"].shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    tw = sd["ln_final.weight"].shape[0]
    return dict(embed_dim=sd["text_projection"].shape[1], image_resolution=grid * patch,
                vision_layers=len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")}),
                vision_width=width, vision_patch_size=patch, context_length=sd["positional_embedding"].shape[0],
                vocab_size=sd["token_embedding.weight"].shape[0], transformer_width=tw, transformer_heads=tw // 64,
                transformer_layers=len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")}))


# ---------------------------------------------------------------------------------------
# open_clip

def openai_to_openclip(sd: dict) -> tuple[dict, dict]:
    """(open_clip ``model_cfg``, state dict): open_clip's CLIP keeps OpenAI's names for ViTs."""
    shape = openai_shape(sd)
    model_cfg = {
        "embed_dim": shape["embed_dim"],
        "quick_gelu": True,
        "vision_cfg": {"image_size": shape["image_resolution"], "layers": shape["vision_layers"],
                       "width": shape["vision_width"], "patch_size": shape["vision_patch_size"], "head_width": 64},
        "text_cfg": {"context_length": shape["context_length"], "vocab_size": shape["vocab_size"],
                     "width": shape["transformer_width"], "heads": shape["transformer_heads"],
                     "layers": shape["transformer_layers"]},
    }
    return model_cfg, {k: v.clone() for k, v in sd.items() if k not in NON_WEIGHT_KEYS}


def write_openclip_dir(sd: dict, folder: str | Path, safetensors: bool = True) -> Path:
    """An open_clip ``local-dir`` folder (config + weights) holding these OpenAI-format weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg, weights = openai_to_openclip(sd)
    config = {"model_cfg": model_cfg,
              "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD),
                                 "size": model_cfg["vision_cfg"]["image_size"]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    if safetensors:
        from safetensors.torch import save_file  # noqa: PLC0415
        save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "open_clip_model.safetensors"))
    else:
        torch.save(weights, folder / "open_clip_pytorch_model.bin")
    return folder


# ---------------------------------------------------------------------------------------
# Hugging Face transformers

def _block(sd: dict, src: str, dst: str) -> dict:
    """One residual block: OpenAI's fused attention projection split into q, k, v."""
    out = {}
    w, b = sd[f"{src}.attn.in_proj_weight"], sd[f"{src}.attn.in_proj_bias"]
    for name, wi, bi in zip(("q", "k", "v"), w.chunk(3), b.chunk(3)):
        out[f"{dst}.self_attn.{name}_proj.weight"] = wi
        out[f"{dst}.self_attn.{name}_proj.bias"] = bi
    pairs = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for a, h in pairs.items():
        out[f"{dst}.{h}.weight"] = sd[f"{src}.{a}.weight"]
        out[f"{dst}.{h}.bias"] = sd[f"{src}.{a}.bias"]
    return out


def openai_to_hf(sd: dict) -> tuple[dict, dict]:
    """(``CLIPConfig`` keyword arguments, state dict) of a transformers ``CLIPModel``."""
    from clipxai.models.hf import clip_config  # noqa: PLC0415

    shape = openai_shape(sd)
    out = {
        "logit_scale": sd["logit_scale"],
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
        "text_projection.weight": sd["text_projection"].t(),
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].t(),
    }
    for i in range(shape["transformer_layers"]):
        out.update(_block(sd, f"transformer.resblocks.{i}", f"text_model.encoder.layers.{i}"))
    for i in range(shape["vision_layers"]):
        out.update(_block(sd, f"visual.transformer.resblocks.{i}", f"vision_model.encoder.layers.{i}"))
    return clip_config(shape), {k: v.clone().contiguous() for k, v in out.items()}


def openai_as(sd: dict, library: str) -> torch.nn.Module:
    """The same weights as an in-memory module of another library: ``openclip`` gives an
    open_clip ``CLIP``, ``hf`` a transformers ``CLIPModel`` (wrap either with ``wrap_module``)."""
    if library == "openclip":
        import open_clip  # noqa: PLC0415
        cfg, weights = openai_to_openclip(sd)
        module = open_clip.model.CLIP(**cfg)
    elif library == "hf":
        import transformers  # noqa: PLC0415
        cfg, weights = openai_to_hf(sd)
        module = transformers.CLIPModel(transformers.CLIPConfig(**cfg))
    else:
        raise ModelLoadError(f"'{library}' is not a library the weights can be converted to (openclip or hf).")
    module.load_state_dict(weights)
    return module


def write_hf_dir(sd: dict, folder: str | Path, tokenizer: bool = True) -> Path:
    """A ``save_pretrained`` folder of a transformers ``CLIPModel`` holding these OpenAI-format weights.

    With ``tokenizer`` the folder also gets a ``CLIPTokenizer`` made from OpenAI's BPE table
    and a ``preprocessor_config.json`` with OpenAI's mean and std.
    """
    from clipxai.models.hf import import_transformers  # noqa: PLC0415
    from clipxai.models.tokenizers import clip_bpe_for_hf  # noqa: PLC0415

    transformers = import_transformers()
    folder = Path(folder)
    config, weights = openai_to_hf(sd)
    model = transformers.CLIPModel(transformers.CLIPConfig(**config)).float()
    model.load_state_dict(weights, strict=True)
    model.save_pretrained(str(folder))
    if tokenizer:
        clip_bpe_for_hf().save_pretrained(str(folder))
        size = config["vision_config"]["image_size"]
        (folder / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "CLIPImageProcessor", "image_mean": list(OPENAI_MEAN),
            "image_std": list(OPENAI_STD), "size": {"shortest_edge": size},
            "crop_size": {"height": size, "width": size}}, indent=2), encoding="utf-8")
    return folder
