"""``clipxai video RUN -o FILE.mp4|.gif``: the run's snapshots as a video."""

from __future__ import annotations

from pathlib import Path

import click

from clipxai.analysis.draw.video import write_video


@click.command("video", context_settings={"show_default": True})
@click.argument("run_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The video file, .mp4 or .gif (default: <run name>.mp4 in the current folder).")
@click.option("--size", "width", type=click.IntRange(64, 4096), default=512,
              help="Width of a frame in pixels (small snapshots are enlarged by a whole factor, at least this).")
@click.option("--fps", type=click.FloatRange(min=0.0, min_open=True, max=240.0), default=12.0,
              help="Frames per second.")
@click.option("--max-frames", type=click.IntRange(0), default=600,
              help="At most this many snapshots, spread evenly over the run (0: every snapshot).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file at -o.")
def video_command(run_path, output, width, fps, max_frames, overwrite):
    """Make a video of a run's snapshots, each captioned with its step and similarity (MP4 or GIF)."""
    from clipxai.runs.load import open_run  # noqa: PLC0415

    run = open_run(run_path)
    output = output or Path(f"{run.path.name}.mp4")
    path, count = write_video(run, output, width=width, fps=fps, max_frames=max_frames, overwrite=overwrite)
    click.echo(f"wrote {path} ({count} frames, {count / fps:.1f} s at {fps:g} frames per second)")
