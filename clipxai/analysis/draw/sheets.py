"""Looking at the snapshots themselves: thumbnails, a contact sheet, an animated GIF.

Only the rows shown are read from the run (memory-mapped or file by file), so a run of
10,000 large snapshots costs only as much as the few dozen pictures drawn from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.errors import ClipxaiError
from clipxai.runs.reader import to_uint8


def even_indices(n: int, count: int) -> np.ndarray:
    """At most ``count`` snapshot indices spread evenly over 0..n-1, first and last included."""
    if n <= count:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, count).round().astype(int))


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


def _ink(color) -> tuple[int, int, int]:
    """A state's colour darkened enough to read as text on white."""
    r, g, b = _rgb(color)
    light = 0.299 * r + 0.587 * g + 0.114 * b
    f = min(1.0, 110 / max(light, 1))
    return int(r * f), int(g * f), int(b * f)


def contact_sheet(images, steps, index, states=None, names: dict | None = None, columns: int = 8,
                  size: int = 96, font_size: int = 12):
    """A PIL image: a grid of the chosen snapshots, each framed in its state's colour and
    captioned with its step and state; a state's words wrap onto up to three lines (drawn
    directly, so dozens of tiles stay cheap; emoji and non-Latin words in their own fonts)."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    from clipxai.analysis.draw.style import state_colors  # noqa: PLC0415
    from clipxai.analysis.draw.text import draw_lines, line_height, wrap  # noqa: PLC0415

    thumbs = thumbnails(images, index, size)
    index = sorted(thumbs)
    cols = min(columns, max(len(index), 1))
    rows = max(1, int(np.ceil(len(index) / cols)))
    border, pad = 3, 6
    cell_w = max(size, 72) + 2 * border + pad
    colors = state_colors(int(np.max(states)) + 1) if states is not None else None
    captions = {}
    for i in index:
        lines = [f"step {int(steps[i])}"]
        if states is not None:
            s = int(states[i])
            lines += wrap(f"state {s}" + (f": {names[s]}" if names and names.get(s) else ""), font_size - 1,
                          cell_w - pad, max_lines=3)
        captions[i] = lines
    caption_h = max(len(c) for c in captions.values()) * line_height(font_size) + 4 if captions else 0
    cell_h = size + 2 * border + caption_h + pad
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for j, i in enumerate(index):
        x, y = (j % cols) * cell_w + pad // 2, (j // cols) * cell_h + pad // 2
        tile = Image.fromarray(thumbs[i])
        frame = _rgb(colors[int(states[i])]) if states is not None else (200, 200, 200)
        draw.rectangle([x, y, x + tile.size[0] + 2 * border - 1, y + tile.size[1] + 2 * border - 1], fill=frame)
        sheet.paste(tile, (x + border, y + border))
        ty = y + tile.size[1] + 2 * border + 2
        first, *rest = captions[i]
        draw_lines(sheet, (x, ty), [first], font_size, "black")
        if rest:
            draw_lines(sheet, (x, ty + line_height(font_size)), rest, font_size - 1,
                       _ink(colors[int(states[i])]) if states is not None else "black")
    return sheet


def captioned(image, lines: list[str], width: int, font_size: int | None = None):
    """``image`` (PIL) scaled to ``width`` pixels (pixel-exact when enlarged by a whole factor)
    under a white band holding ``lines`` of text: a frame of an animation or a video."""
    from PIL import Image  # noqa: PLC0415

    from clipxai.analysis.draw.text import draw_lines, line_height, wrap  # noqa: PLC0415

    image = image.convert("RGB")
    w, h = image.size
    scale = width / w
    method = Image.NEAREST if scale >= 1 and float(scale).is_integer() else Image.LANCZOS
    image = image.resize((width, max(1, round(h * scale))), method)
    font_size = font_size or max(12, min(24, width // 18))
    wrapped = [part for line in lines for part in wrap(line, font_size, width - 8, max_lines=2)]
    band = len(wrapped) * line_height(font_size) + 8
    canvas = Image.new("RGB", (width, image.size[1] + band), "white")
    draw_lines(canvas, (4, 4), wrapped, font_size, "black")
    canvas.paste(image, (0, band))
    return canvas


def frame_width(native: int, at_least: int) -> int:
    """A frame width of at least ``at_least`` pixels: a whole multiple of small images (crisp
    pixels), else ``at_least`` itself."""
    if native >= at_least:
        return at_least
    return native * int(np.ceil(at_least / native))


def animated_gif(images, steps, path: Path, states=None, max_frames: int = 80, size: int = 192,
                 duration_ms: int = 80, names: dict | None = None) -> Path:
    """An animated GIF of (at most ``max_frames`` evenly spaced) snapshots, at least ``size``
    pixels wide, captioned with the step (and the state, with its words when ``names`` has them)."""
    from PIL import Image  # noqa: PLC0415

    n = len(images)
    if n == 0:
        raise ClipxaiError("There are no snapshots to animate.")
    idx = even_indices(n, max_frames)
    frames = []
    for start in range(0, len(idx), 32):
        rows = np.asarray(images[idx[start:start + 32]], dtype=np.float32)
        for i, chw in zip(idx[start:start + 32], rows):
            im = Image.fromarray(to_uint8(chw))
            label = f"step {int(steps[i])}"
            if states is not None:
                s = int(states[i])
                label += f" · state {s}" + (f": {names[s]}" if names and names.get(s) else "")
            frame = captioned(im, [label], frame_width(im.size[0], size))
            frames.append(frame.quantize(colors=255, method=Image.Quantize.MEDIANCUT))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0, optimize=False)
    return path


def journeys(rows: list[dict], columns: int = 8, size: int = 72, font_size: int = 12, label_width: int = 150):
    """A PIL image: one row per run (its label, then ``columns`` snapshots spread evenly from the
    first to the last, framed in their state's colour, each with its step): where each run went.

    Each row is a dict with ``label`` (str), ``images``, ``steps`` and optionally ``states``.
    """
    from PIL import Image, ImageDraw  # noqa: PLC0415

    from clipxai.analysis.draw.style import state_colors  # noqa: PLC0415
    from clipxai.analysis.draw.text import draw_lines, line_height, wrap  # noqa: PLC0415

    border, gap = 3, 6
    cell_w = size + 2 * border + gap
    cell_h = size + 2 * border + line_height(font_size) + gap + 4
    width = label_width + columns * cell_w
    sheet = Image.new("RGB", (width, max(1, len(rows)) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        y = r * cell_h + gap // 2
        lines = wrap(row["label"], font_size + 1, label_width - 10, max_lines=3)
        draw_lines(sheet, (2, y + max(0, (size - len(lines) * line_height(font_size + 1)) // 2)), lines,
                   font_size + 1)
        n = len(row["images"])
        idx = even_indices(n, columns)
        thumbs = thumbnails(row["images"], idx, size)
        states = row.get("states")
        colors = state_colors(int(np.max(states)) + 1) if states is not None and len(states) else None
        for j, i in enumerate(idx):
            x = label_width + j * cell_w
            tile = Image.fromarray(thumbs[int(i)])
            frame = _rgb(colors[int(states[i])]) if colors else (200, 200, 200)
            draw.rectangle([x, y, x + tile.size[0] + 2 * border - 1, y + tile.size[1] + 2 * border - 1], fill=frame)
            sheet.paste(tile, (x + border, y + border))
            draw_lines(sheet, (x, y + tile.size[1] + 2 * border + 2), [f"step {int(row['steps'][i])}"],
                       font_size - 1, "black")
    return sheet
