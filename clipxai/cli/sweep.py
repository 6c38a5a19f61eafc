"""``clipxai sweep`` and ``clipxai atlas``: the sweep and atlas functions wired to files and exit codes."""

from __future__ import annotations

import signal

import click

from clipxai.util.extras import require_extra


@click.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process, one run after another; ray: one Ray task per run (or seed group).")
@click.option("--address", default=None, help="ray: join the Ray cluster at this address (default: start one here).")
@click.option("--out", default="runs", show_default=True, help="Parent folder; the sweep lives in OUT/<name>.")
@click.option("--retries", type=int, default=None,
              help="How often a failed run is started again [default: the spec's, 1].")
@click.option("--max-rows", type=click.IntRange(1), default=None,
              help="Run a grid of more than 10,000 runs (the most it runs unless told).")
def sweep_command(spec, executor, address, out, retries, max_rows=None):
    """Run every run of the grid in SPEC.toml (or continue it); exit 0 when all completed, 1 when some failed."""
    if executor == "ray":
        require_extra("sweep", "--executor ray")
    from clipxai.sweep.driver import run_sweep  # noqa: PLC0415

    def stop(signum, _frame):  # between runs; during a run, ascend stops it cleanly after the current step
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        outcome = run_sweep(spec, out=out, executor=executor, address=address, retries=retries, max_rows=max_rows)
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(str(outcome.folder))
    if outcome.exit_code:
        raise SystemExit(outcome.exit_code)


@click.command("atlas")
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@click.option("-o", "--out", required=True, help="Folder for atlas.csv and atlas.html.")
@click.option("--thumb", type=click.IntRange(16, 1024), default=112, show_default=True,
              help="Largest side of the images embedded in atlas.html, in pixels.")
def atlas_command(sweep_dir, out, thumb):
    """The concept atlas of a sweep: atlas.csv (a row per run) and a self-contained atlas.html."""
    from clipxai.sweep.atlas import build_atlas  # noqa: PLC0415

    result = build_atlas(sweep_dir, out, thumb=thumb, log=lambda m: click.echo(m, err=True))
    click.echo(str(result.html))
