"""``clipxai ascend``, ``clipxai losses`` and ``clipxai models``: flags mapped onto the API.

The command-line contract scripts rely on: ``ascend`` prints each run folder's path, the
last one as the last line of standard output, and exits 0 only when every run completed
(130 when interrupted, 3 when the loss became NaN or infinite, 2 on bad input).
"""

from __future__ import annotations

import click

from .config import ACTIVATIONS, OPTIMIZERS, SCHEDULES, SIMILARITIES, list_presets
from .errors import ClipxaiError, NonFiniteLossError

EXIT_INTERRUPTED = 130
EXIT_NONFINITE = 3


def _param_options(**given) -> dict:
    return {k: v for k, v in given.items() if v not in (None, ())}


@click.command("ascend")
@click.argument("prompt", required=False)
@click.option("--preset", type=click.Choice(list_presets()), help="Named defaults (default: default; zer0int = the original experiment).")
@click.option("--model", help="CLIP name (ViT-B/32, ...), local OpenAI-format file, toy, or random:<arch>.")
@click.option("--device", help="auto (default), cpu, cuda or mps.")
@click.option("--param", help="Parameterization: pixels, fourier, vqgan, cvae.")
@click.option("--size", nargs=2, type=int, metavar="W H", help="Image size (default: the model's input resolution).")
@click.option("--steps", type=int, help="Optimization steps.")
@click.option("--lr", type=float, help="Learning rate.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS))
@click.option("--weight-decay", type=float)
@click.option("--lr-schedule", type=click.Choice(SCHEDULES))
@click.option("--seed", type=int, help="Seed of the first run.")
@click.option("--seeds", type=int, help="Run K seeds (seed, seed+1, ...) batched in one forward pass; one folder each.")
@click.option("--sigma", type=float, help="Std of the initial noise.")
@click.option("--init-mean", type=float, help="Mean of the initial pixel noise.")
@click.option("--init-tint", type=float, help="pixels: std of a per-seed colour offset, so seeds start from different hues.")
@click.option("--clamp/--no-clamp", default=None, help="Clamp pixels to [0,1] (straight-through gradient).")
@click.option("--normalize/--no-normalize", default=None, help="Apply CLIP's mean/std normalization to the image.")
@click.option("--cutouts", type=int, help="Augmented views per step; 0 disables augmentation.")
@click.option("--cut-min", type=float, help="Smallest cutout side, fraction of the image.")
@click.option("--cut-max", type=float, help="Largest cutout side, fraction of the image.")
@click.option("--jitter", type=float, help="Random shift of cutouts, fraction of the image.")
@click.option("--aug-noise", type=float, help="Std of noise added to each view.")
@click.option("--augment-fixed", is_flag=True, default=None, help="Reuse the same cutouts every step (a control).")
@click.option("--similarity", type=click.Choice(SIMILARITIES), help="cosine, spherical, or logexp (log(exp(cos/T))).")
@click.option("--temperature", type=float, help="T of the logexp similarity.")
@click.option("--tv", type=float, help="Weight of the total-variation penalty.")
@click.option("--tv-reduction", type=click.Choice(["mean", "sum"]))
@click.option("--memory", type=float, help="Weight of the distance to the best image so far.")
@click.option("--range", "range_", type=float, help="Weight of the penalty on pixels outside [0,1].")
@click.option("--loss", "losses", multiple=True, metavar="SPEC[=W]", help="Extra term: name, file.py:fn or module:fn, times W (maximized).")
@click.option("--image-prompt", "image_prompts", multiple=True, metavar="FILE[:W]", help="Image whose CLIP embedding is a prompt.")
@click.option("--snapshot-every", type=int, help="Record a snapshot every N steps.")
@click.option("--log-every", type=int, help="Write metrics every N steps.")
@click.option("--hooks", help="Hook points to record, e.g. 'visual.transformer.resblocks.*' (* = one name part, ** = any).")
@click.option("--activations", type=click.Choice(ACTIVATIONS), help="pooled (mean over tokens), full (all tokens) or none.")
@click.option("--gradients/--no-gradients", "record_gradients", default=None, help="Record d objective / d image.")
@click.option("--frames", is_flag=True, default=None, help="Also write a PNG per snapshot.")
@click.option("--out", help="Parent folder of runs (default ./runs).")
@click.option("--name", help="Run folder name (default: UTC time and prompt slug).")
@click.option("--quiet", is_flag=True, default=None, help="No progress bar.")
@click.option("--resume", type=click.Path(), help="Continue an interrupted run folder.")
@click.option("--vqgan", "vqgan_name", help="vqgan: a bundled VQGAN (toy).")
@click.option("--vqgan-config", type=click.Path(), help="vqgan: the model's yaml.")
@click.option("--vqgan-checkpoint", type=click.Path(), help="vqgan: the model's checkpoint.")
@click.option("--init-image", type=click.Path(), help="vqgan/cvae: start from this image (encoded).")
@click.option("--noise-factor", type=float, help="vqgan: noise added to z each step.")
@click.option("--vqgan-init", type=click.Choice(["codes", "noise", "image"]), help="vqgan: start from random codes, noise, or --init-image.")
@click.option("--vqgan-quantize/--no-vqgan-quantize", default=None, help="vqgan: snap z to the codebook (straight-through).")
@click.option("--cvae", "cvae_checkpoint", type=click.Path(), help="cvae: the trained CVAE checkpoint (or toy).")
@click.option("--cvae-text", help="cvae: the sentence whose embedding starts the condition (default: the prompt).")
@click.option("--cvae-optimize-condition", is_flag=True, default=None, help="cvae: optimize the condition vector too.")
@click.option("--expand", "expand_n", type=int, default=None, is_flag=False, flag_value=1,
              help="Replace the prompt by N LLM expansions (weighted equally); see `clipxai expand`.")
@click.option("--llm-model", help="expand: model name at the LLM endpoint.")
@click.option("--llm-base-url", help="expand: OpenAI-compatible base URL (local servers welcome).")
def ascend_command(prompt, resume, range_, vqgan_name, vqgan_config, vqgan_checkpoint, init_image,
                   noise_factor, vqgan_init, vqgan_quantize, cvae_checkpoint, cvae_text, cvae_optimize_condition, expand_n, llm_model, llm_base_url, **options):
    """Optimize an image from noise toward PROMPT ("text:w|text:-w") and record the run."""
    from . import engine  # noqa: PLC0415  (torch and clip load only when a command runs)

    options["range"] = range_
    params = _param_options(vqgan=vqgan_name, vqgan_config=vqgan_config, vqgan_checkpoint=vqgan_checkpoint,
                            init_image=init_image, noise_factor=noise_factor, init=vqgan_init,
                            quantize=vqgan_quantize, cvae=cvae_checkpoint, cvae_text=cvae_text,
                            cvae_optimize_condition=cvae_optimize_condition)
    if params:
        options["param_options"] = params
    options = {k: (list(v) if isinstance(v, tuple) and k in ("losses", "image_prompts") else v)
               for k, v in options.items() if v not in (None, ())}
    if resume:
        if prompt:
            raise ClipxaiError("Give either a PROMPT or --resume RUN, not both.")
        runs = [engine.ascend(resume=resume, **options)]
    else:
        if prompt is None:
            raise ClipxaiError("The prompt is missing; run `clipxai ascend \"a red heart\"`.")
        expand = None
        if expand_n:
            expand = {"n": expand_n, "model": llm_model, "base_url": llm_base_url}
        try:
            result = engine.ascend(prompt, expand=expand, **options)
        except NonFiniteLossError as err:
            click.echo(f"error: {err}", err=True)
            for path in getattr(err, "run_paths", []):
                click.echo(str(path))
            raise SystemExit(EXIT_NONFINITE) from err
        runs = result if isinstance(result, list) else [result]
    for run in runs:
        click.echo(str(run.path))
    if any(run.status != "complete" for run in runs):
        click.echo(f"stopped early ({runs[0].manifest.get('stop_reason', 'interrupted')}); "
                   f"continue with: clipxai ascend --resume {runs[0].path}", err=True)
        raise SystemExit(EXIT_INTERRUPTED)


@click.command("losses")
@click.argument("pattern", default="*")
def losses_command(pattern):
    """List the loss terms --loss accepts (built-in and plugins), one line each."""
    from .objectives import list_losses  # noqa: PLC0415

    rows = list_losses(pattern)
    width = max((len(n) for n, _ in rows), default=0)
    for name, desc in rows:
        click.echo(f"{name:<{width}}  {desc}")
    click.echo("Also: any file.py:function or package.module:function returning a scalar to maximize.")


@click.command("models")
def models_command():
    """List the models --model can load on this machine offline, and where each lies."""
    from .models.catalog import format_catalog, offline_catalog  # noqa: PLC0415

    click.echo(format_catalog(offline_catalog()))
