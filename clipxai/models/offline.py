"""The local caches models are read from, and a guard that keeps the hub libraries offline.

open_clip's pretrained tags and Hugging Face ids are read from the Hugging Face hub cache
only (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``); open_clip
tags hosted elsewhere from ``~/.cache/clip``. Nothing here touches the network: a missing
file is found by looking, so the error comes at once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it from the environment."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def openclip_url_cache_dir() -> Path:
    """Where open_clip keeps weights it downloads from plain URLs."""
    return Path("~/.cache/clip").expanduser()


def repo_folder(repo_id: str) -> Path:
    """The cache folder of a hub model repository (``models--org--name``)."""
    return hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def cached_file(repo_id: str, filename: str) -> Path | None:
    """A file of a hub repository in the local cache (its newest snapshot holding it), or None."""
    folder = repo_folder(repo_id)
    ref = folder / "refs" / "main"
    snapshots = folder / "snapshots"
    candidates = []
    with contextlib.suppress(OSError):
        candidates.append(snapshots / ref.read_text().strip())
    with contextlib.suppress(OSError):
        candidates += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in candidates:
        path = snap / filename
        if path.is_file():
            return path
    return None


def cached_snapshot(repo_id: str, must_hold: str = "config.json") -> Path | None:
    """The snapshot folder of a hub repository that holds ``must_hold``, or None."""
    path = cached_file(repo_id, must_hold)
    return path.parent if path is not None else None


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Within the block, huggingface_hub and transformers refuse to reach the network."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    constants = None
    with contextlib.suppress(ImportError):
        from huggingface_hub import constants  # noqa: PLC0415
    old = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = old
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def openai_model_urls() -> dict[str, str]:
    """OpenAI's named models and their download addresses, read from clip's source without importing
    it (importing clip imports torch, which takes seconds)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        return {}
    try:
        text = (Path(spec.submodule_search_locations[0]) / "clip.py").read_text(encoding="utf-8")
    except OSError:
        return {}
    return dict(re.findall(r'"([^"]+)":\s*"(https://[^"]+\.pt)"', text))


def offline_hint() -> str:
    """What to do when a named OpenAI model cannot be had: the offline toy CLIP and the listing."""
    return ("to try clipxai offline, use the bundled toy CLIP (`clipxai ascend \"❤️\" --model toy`); "
            "`clipxai models` lists what loads on this machine")


def clip_cache_dir() -> Path:
    """The folder clip downloads named models into (and reads them from)."""
    return Path(os.environ.get("CLIPXAI_CLIP_CACHE", Path.home() / ".cache" / "clip"))


def unreachable_named_model(name: str, timeout: float = 2.0) -> str | None:
    """Why the named OpenAI model cannot load here (not cached, and its server cannot be reached within
    ``timeout`` seconds), or None when it is cached, not an OpenAI name, or reachable."""
    url, cache = openai_model_urls().get(name), clip_cache_dir()
    if url is None or (cache / os.path.basename(url)).is_file():
        return None
    host = urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return (f"The CLIP model '{name}' is not in {cache} and this machine cannot reach its download; "
                f"{offline_hint()}; or place {os.path.basename(url)} in {cache}, or pass --model with a local file.")
    return None
