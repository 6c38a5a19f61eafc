"""``clipxai video RUN -o FILE.mp4|.gif``: the run's snapshots as a video a person can watch.

Each frame is a snapshot enlarged to a readable width (by a whole factor for small images,
so pixels stay crisp) under a caption: the step, the similarity to the prompt at that step
(from metrics.jsonl), and the state with its words when the run was analyzed. MP4 goes
through the ffmpeg that the ``imageio-ffmpeg`` package ships (``pip install
"clipxai[video]"``); GIF needs nothing beyond Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.errors import ClipxaiError
from clipxai.util.files import atomic_path
from clipxai.util.paths import check_can_write

FORMATS = (".mp4", ".gif")
NO_FFMPEG = ("Writing an MP4 needs ffmpeg, which the imageio-ffmpeg package ships: pip install "
             "\"clipxai[video]\" (or write a .gif, which needs nothing more).")


def _ffmpeg():
    """imageio_ffmpeg with a working ffmpeg binary, or a ClipxaiError saying how to get one."""
    try:
        import imageio_ffmpeg  # noqa: PLC0415
        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise ClipxaiError(NO_FFMPEG) from err
    return imageio_ffmpeg


def _similarity_at(run, steps: np.ndarray) -> tuple[str | None, np.ndarray | None]:
    """The first prompt's logged similarity at each step (the last logged at or before it)."""
    from clipxai.analysis.draw.chart import metric_series  # noqa: PLC0415

    logged, sims = metric_series(run.metrics(), "sim/")
    if not sims or not len(logged):
        return None, None
    name, values = next(iter(sims.items()))
    order = np.argsort(logged, kind="stable")
    logged, values = logged[order], values[order]
    at = np.clip(np.searchsorted(logged, steps, side="right") - 1, 0, len(logged) - 1)
    return name, values[at]


def _states(run) -> tuple[np.ndarray | None, dict]:
    """The analyzed state of every snapshot and each state's top words, when the run was analyzed."""
    from clipxai.runs.summary import read_summary  # noqa: PLC0415

    summary = read_summary(run)
    if not summary or len(summary.get("states") or []) != run.n:
        return None, {}
    labels = (summary.get("labels") or {}).get("states") or {}
    names = {int(k): ", ".join(w["word"] for w in v[:2]) for k, v in labels.items()}
    return np.asarray(summary["states"]), names


def frames(run, width: int = 512, max_frames: int = 600):
    """(snapshot index, PIL frame) for at most ``max_frames`` evenly spaced snapshots (0: all)."""
    from PIL import Image  # noqa: PLC0415

    from clipxai.analysis.draw.sheets import captioned, even_indices, frame_width  # noqa: PLC0415
    from clipxai.runs.reader import to_uint8  # noqa: PLC0415

    if run.n == 0 or "images" not in run.array_names():
        raise ClipxaiError(f"{run.path} has no snapshot images to make a video of.")
    steps = np.asarray(run.steps)
    idx = even_indices(run.n, max_frames) if max_frames else np.arange(run.n)
    _, sims = _similarity_at(run, steps[idx])
    states, names = _states(run)
    for start in range(0, len(idx), 32):
        chunk = idx[start:start + 32]
        for j, (i, chw) in enumerate(zip(chunk, np.asarray(run.images[chunk], dtype=np.float32))):
            image = Image.fromarray(to_uint8(chw))
            line = f"step {int(steps[i])}"
            if sims is not None:
                line += f" · similarity {sims[start + j]:.3f}"
            lines = [line]
            if states is not None:
                s = int(states[i])
                lines.append(f"state {s}" + (f": {names[s]}" if names.get(s) else ""))
            yield int(i), captioned(image, lines, frame_width(image.size[0], width))


def _pad(frame, multiple: int = 16):
    """The frame on a white canvas whose sides are multiples of ``multiple`` (what H.264 wants)."""
    from PIL import Image  # noqa: PLC0415

    w, h = frame.size
    W, H = -(-w // multiple) * multiple, -(-h // multiple) * multiple
    if (W, H) == (w, h):
        return frame
    canvas = Image.new("RGB", (W, H), "white")
    canvas.paste(frame, ((W - w) // 2, 0))
    return canvas


def write_video(run, output: str | Path, width: int = 512, fps: float = 12, max_frames: int = 600,
                overwrite: bool = False, log=None) -> tuple[Path, int]:
    """Write the run as ``output`` (.mp4 or .gif); returns the path and the number of frames."""
    output = Path(output).expanduser()
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise ClipxaiError(f"{output} should end in .mp4 or .gif, the two formats clipxai video writes.")
    if output.is_dir():
        raise ClipxaiError(f"{output} is a folder; give the video a file name such as run.mp4.")
    if output.exists() and not overwrite:
        raise ClipxaiError(f"{output} exists; choose another -o, or pass --overwrite to replace it.")
    if not 0 < fps <= 240:   # also refuses nan
        raise ClipxaiError(f"--fps must be above 0 and at most 240; got {fps:g}.")
    check_can_write(output.parent, "video")
    ffmpeg = _ffmpeg() if suffix == ".mp4" else None
    log = log or (lambda msg: None)
    output.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_path(output, suffix=suffix) as tmp:
        if ffmpeg is not None:
            writer = None
            for _, frame in frames(run, width, max_frames):
                frame = _pad(frame)
                if writer is None:
                    writer = ffmpeg.write_frames(str(tmp), frame.size, fps=fps, codec="libx264", quality=8,
                                                 macro_block_size=16, ffmpeg_log_level="error")
                    writer.send(None)
                writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGB"))))
                count += 1
            if writer is not None:
                writer.close()
        else:
            from PIL import Image  # noqa: PLC0415
            pictures = [f.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
                        for _, f in frames(run, width, max_frames)]
            count = len(pictures)
            pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:],
                             duration=round(1000 / fps), loop=0)
    log(f"wrote {count} frames")
    return output, count
