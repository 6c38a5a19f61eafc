"""Looking at the snapshots themselves: thumbnails, a contact sheet, an animated GIF.

Only the rows shown are read from the run (memory-mapped or file by file), so a run of
10,000 large snapshots costs only as much as the few dozen pictures drawn from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ClipxaiError


def even_indices(n: int, count: int) -> np.ndarray:
    """At most ``count`` snapshot indices spread evenly over 0..n-1, first and last included."""
    if n <= count:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, count).round().astype(int))


def to_uint8(chw: np.ndarray) -> np.ndarray:
    """(3, H, W) values as CLIP saw them (clipped to [0, 1]) -> (H, W, 3) uint8."""
    x = np.nan_to_num(np.asarray(chw, dtype=np.float32), nan=0.0)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def thumbnails(images, index, size: int = 96) -> dict[int, np.ndarray]:
    """Snapshot index -> (h, w, 3) uint8 image at most ``size`` pixels on its long side."""
    from PIL import Image  # noqa: PLC0415

    index = sorted(set(int(i) for i in index))
    if not index:
        return {}
    rows = np.asarray(images[index], dtype=np.float32)
    out = {}
    for i, chw in zip(index, rows):
        im = Image.fromarray(to_uint8(chw))
        if max(im.size) > size:
            im.thumbnail((size, size), Image.LANCZOS)
        elif max(im.size) < size // 2:
            scale = size // max(im.size)
            im = im.resize((im.size[0] * scale, im.size[1] * scale), Image.NEAREST)
        out[i] = np.asarray(im)
    return out


def representatives(features: np.ndarray, states: np.ndarray) -> dict[int, int]:
    """For each state, the snapshot closest to the state's centroid (its most typical picture)."""
    out = {}
    for s in range(int(states.max()) + 1):
        members = np.flatnonzero(states == s)
        if len(members):
            c = features[members].mean(axis=0)
            out[s] = int(members[np.argmin(((features[members] - c) ** 2).sum(axis=1))])
    return out


def _rgb(color) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in color[:3])


def contact_sheet(images, steps, index, states=None, names: dict | None = None, columns: int = 8,
                  size: int = 96):
    """A PIL image: a grid of the chosen snapshots, each framed in its state's colour and
    captioned with its step and state (drawn directly, so dozens of tiles stay cheap)."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    from .style import state_colors  # noqa: PLC0415

    thumbs = thumbnails(images, index, size)
    index = sorted(thumbs)
    cols = min(columns, max(len(index), 1))
    rows = max(1, int(np.ceil(len(index) / cols)))
    border, caption = 3, 24 if states is not None else 12
    cell_w, cell_h = size + 2 * border + 4, size + 2 * border + caption + 4
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    colors = state_colors(int(np.max(states)) + 1) if states is not None else None
    for j, i in enumerate(index):
        x, y = (j % cols) * cell_w + 2, (j // cols) * cell_h + 2
        tile = Image.fromarray(thumbs[i])
        frame = _rgb(colors[int(states[i])]) if states is not None else (200, 200, 200)
        draw.rectangle([x, y, x + tile.size[0] + 2 * border - 1, y + tile.size[1] + 2 * border - 1], fill=frame)
        sheet.paste(tile, (x + border, y + border))
        ty = y + tile.size[1] + 2 * border + 1
        draw.text((x, ty), f"step {int(steps[i])}", fill="black")
        if states is not None:
            s = int(states[i])
            label = f"state {s}" + (f": {names[s]}" if names and s in names else "")
            draw.text((x, ty + 11), label[: max(8, cell_w // 6)], fill=frame)
    return sheet


def animated_gif(images, steps, path: Path, states=None, max_frames: int = 80, size: int = 128,
                 duration_ms: int = 80) -> Path:
    """An animated GIF of (at most ``max_frames`` evenly spaced) snapshots, captioned with the step."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    n = len(images)
    if n == 0:
        raise ClipxaiError("There are no snapshots to animate.")
    idx = even_indices(n, max_frames)
    thumbs = thumbnails(images, idx, size)
    frames = []
    for i in idx:
        im = Image.fromarray(thumbs[int(i)]).convert("RGB")
        canvas = Image.new("RGB", (im.size[0], im.size[1] + 14), "white")
        canvas.paste(im, (0, 14))
        label = f"step {int(steps[i])}" + (f"  state {int(states[i])}" if states is not None else "")
        ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
        frames.append(canvas.quantize(colors=255, method=Image.Quantize.MEDIANCUT))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0, optimize=False)
    return path
