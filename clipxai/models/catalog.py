"""What ``--model`` can load on this machine without network, and where each model lies.

Only files are looked at (the caches of clip and of the Hugging Face hub); a library is
imported only to name what was found (open_clip's pretrained tags), so listing is fast.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from clipxai.models.offline import hf_cache_dir, openclip_url_cache_dir


@dataclass
class Entry:
    spec: str          # what to pass to --model
    backend: str
    usable: bool       # loadable offline right now
    where: str         # the file or folder it is read from, or what to place and where


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def bundled() -> list[Entry]:
    from clipxai.toy.bundled import BUNDLED_MODELS  # noqa: PLC0415
    return [Entry(name, "openai", path.is_file(), str(path)) for name, path in BUNDLED_MODELS.items()]


def openai_names() -> list[Entry]:
    from clipxai.models.openai import available_models, clip_cache_dir, named_model_file  # noqa: PLC0415
    out = []
    for name in available_models():
        path = named_model_file(name)
        found = path.is_file()
        out.append(Entry(name, "openai", found, str(path) if found else f"place {path.name} in {clip_cache_dir()}"))
    return out


def random_forms() -> list[Entry]:
    from clipxai.models.openai import ARCHITECTURES  # noqa: PLC0415
    archs = ", ".join(ARCHITECTURES)
    out = [Entry(f"random:{a}", "openai", True, "random weights") for a in ARCHITECTURES]
    out.append(Entry("random:hf:ARCH", "hf", _installed("transformers"),
                     f"random weights, ARCH one of {archs}" if _installed("transformers") else "needs transformers"))
    out.append(Entry("random:openclip:ARCH", "openclip", _installed("open_clip"),
                     "random weights, ARCH any of open_clip.list_models()" if _installed("open_clip")
                     else "needs open_clip"))
    return out


def _snapshots(repo: Path) -> list[Path]:
    try:
        return sorted((repo / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []


def hf_models() -> list[Entry]:
    """Hub repositories in the cache (newest snapshot): CLIP/SigLIP models, and open_clip-layout ones."""
    out = []
    root = hf_cache_dir()
    for repo in sorted(root.glob("models--*")) if root.is_dir() else []:
        repo_id = repo.name[len("models--"):].replace("--", "/")
        snap = next((s for s in _snapshots(repo) if (s / "config.json").is_file()
                     or (s / "open_clip_config.json").is_file()), None)
        if snap is None:
            continue
        if (snap / "open_clip_config.json").is_file():
            out.append(Entry(f"openclip:hf-hub:{repo_id}", "openclip", _installed("open_clip"), str(snap)))
        try:
            kind = json.loads((snap / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            kind = None
        if kind in ("clip", "siglip"):
            weights = any((snap / n).is_file() for n in ("model.safetensors", "pytorch_model.bin",
                                                          "model.safetensors.index.json"))
            out.append(Entry(f"hf:{repo_id}", "hf", weights and _installed("transformers"),
                             str(snap) if weights else f"place model.safetensors in {snap}"))
    return out


def _has_openclip_files() -> bool:
    root = hf_cache_dir()
    if root.is_dir() and any(root.glob("models--*/snapshots/*/open_clip_*")):
        return True
    url_cache = openclip_url_cache_dir()
    return url_cache.is_dir() and any(p.suffix in (".pt", ".bin", ".safetensors") for p in url_cache.iterdir())


def openclip_tags() -> list[Entry]:
    """open_clip pretrained tags whose weights are in the local caches (open_clip is imported only then)."""
    if not _installed("open_clip") or not _has_openclip_files():
        return []
    from clipxai.models.openclip import import_open_clip, tag_file  # noqa: PLC0415
    open_clip = import_open_clip()
    out = []
    for arch, tag in open_clip.list_pretrained():
        path, _ = tag_file(open_clip.get_pretrained_cfg(arch, tag))
        if path is not None:
            out.append(Entry(f"openclip:{arch}/{tag}", "openclip", True, str(path)))
    return out


def offline_catalog() -> list[Entry]:
    """Every model usable here (and OpenAI's names that are not), bundled first."""
    return bundled() + openai_names() + random_forms() + openclip_tags() + hf_models()


def format_catalog(entries: list[Entry]) -> str:
    from clipxai.models.openai import clip_cache_dir  # noqa: PLC0415
    lines = []
    for title, usable in (("Usable offline:", True), ("Not on this machine:", False)):
        rows = [e for e in entries if e.usable == usable]
        if not rows:
            continue
        width = max(len(e.spec) for e in rows)
        lines.append(title)
        lines += [f"  {e.spec:<{width}}  {e.backend:<8}  {e.where}" for e in rows]
    lines += [
        "Also: a weights file (FILE.pt, FILE.safetensors: OpenAI or Hugging Face layout), a model folder,",
        "openclip:ARCH/TAG, openclip:DIR, openclip:hf-hub:ID, hf:ID, hf:DIR (docs/models.md: bringing weights here).",
        f"Caches: clip {clip_cache_dir()}; Hugging Face hub {hf_cache_dir()}; open_clip URLs {openclip_url_cache_dir()}.",
    ]
    return "\n".join(lines)

