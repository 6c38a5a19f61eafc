"""``clipxai ascend``, ``clipxai terms`` and ``clipxai models``: flags mapped onto the API.

The command-line contract scripts rely on: ``ascend`` prints each run folder's path, the
last one as the last line of standard output, and exits 0 only when every run completed
(130 when interrupted, 3 when the objective became NaN or infinite, 2 on bad input).

Most flags are generated from one table (``OPTIONS``): each names the flat option it sets,
and its help shows what the presets make of it. Parameterization options travel as
``-P key=value``; the long flags of the pixel, VQGAN and CVAE options are aliases of it.
"""

from __future__ import annotations

import click

from clipxai.ascent.config import (
    ACTIVATIONS,
    DEFAULT_MODEL,
    OPTIMIZERS,
    PARAM_ALIASES,
    PRESETS,
    SCHEDULES,
    SIMILARITIES,
    TEXT_CONTEXTS,
    list_presets,
    model_specs,
)
from clipxai.errors import EXIT_INTERRUPTED, ClipxaiError, NonFiniteLossError, TermError

# (flags, flat option name, click type, help). The default shown is the preset's.
OPTIONS: list[tuple[tuple[str, ...], str, object, str]] = [
    (("--device",), "device", str, "auto, cpu, cuda, cuda:N or mps."),
    (("--param",), "param", str, "Parameterization: pixels, fourier, pyramid, maco, vqgan, cvae, sdvae."),
    (("--steps",), "steps", int, "Optimization steps."),
    (("--lr",), "lr", float, "Learning rate."),
    (("--optimizer",), "optimizer", click.Choice(OPTIMIZERS), "Optimizer."),
    (("--weight-decay",), "weight_decay", float, "Weight decay of the optimizer."),
    (("--lr-schedule",), "lr_schedule", click.Choice(SCHEDULES),
     "constant, cosine (to 0.1 x lr) or plateau (halve after 50 steps without gain)."),
    (("--seed",), "seed", int, "Seed of the first run."),
    (("--seeds",), "seeds", int, "Run K seeds (seed, seed+1, ...) batched in one forward pass; one folder each."),
    (("--normalize/--no-normalize",), "normalize", None, "Apply CLIP's mean/std normalization to the image."),
    (("--cutouts",), "cutouts", int, "Augmented views per step; 0 disables augmentation."),
    (("--cut-min",), "cut_min", float, "Smallest cutout side, fraction of the image."),
    (("--cut-max",), "cut_max", float, "Largest cutout side, fraction of the image."),
    (("--jitter",), "jitter", float, "Random shift of cutouts, fraction of the image."),
    (("--aug-noise",), "aug_noise", float, "Std of noise added to each view."),
    (("--augment-fixed",), "augment_fixed", "flag", "Reuse the same cutouts every step (a control)."),
    (("--similarity",), "similarity", click.Choice(SIMILARITIES), "cosine, spherical, or logexp (log(exp(cos/T)))."),
    (("--temperature",), "temperature", float, "T of the logexp similarity."),
    (("--text-context",), "text_context", click.Choice(TEXT_CONTEXTS),
     "Encode prompts trimmed at their end token (fast) or padded to the full context (the original script)."),
    (("--tv",), "tv", float, "Weight of the total-variation penalty."),
    (("--tv-reduction",), "tv_reduction", click.Choice(["mean", "sum"]), "Total variation as a mean or a sum."),
    (("--memory",), "memory", float, "Weight of the distance to the best image so far."),
    (("--range",), "range", float, "Weight of the penalty on pixels outside [0,1]."),
    (("--style",), "style", str, 'A style prompt "TEXT[:W]", scored apart from the content prompt (term style(TEXT)).'),
    (("--accentuate",), "accentuate", click.Path(),
     "Feature accentuation: start the pixels from this image and keep the model's activations close to its own."),
    (("--accent-weight",), "accent_weight", float, "--accentuate: weight of the distance to the start. [default: 1.0]"),
    (("--accent-layers",), "accent_layers", str,
     "--accentuate: layers compared, comma-separated (blocks.N or module names). [default: the middle block]"),
    (("--cutout-batch",), "cutout_batch", int,
     "Views per encoder pass, gradients accumulated: peak memory follows this, not --cutouts (0: all at once)."),
    (("--precision",), "precision", click.Choice(["auto", "fp32", "bf16", "fp16"]),
     "CLIP's compute precision (autocast): auto = fp32 on CPU, bf16 on CUDA. On a CPU without bf16/fp16 "
     "instructions (AVX-512 BF16/FP16, AMX) they are refused: emulated, a step takes ~30x as long."),
    (("--force-precision",), "force_precision", "flag",
     "Run --precision bf16/fp16 on a CPU without instructions for it anyway (emulated: slow)."),
    (("--compile",), "compile", "flag", "torch.compile the image encoder (slow first step; reported once)."),
    (("--checkpoint-activations",), "checkpoint_activations", "flag",
     "Recompute the image tower's blocks in backward: less memory, more time."),
    (("--deterministic",), "deterministic", "flag", "Deterministic kernels and cuDNN/cuBLAS settings (GPU)."),
    (("--batch-invariant",), "batch_invariant", "flag",
     "Encode each seed's views in its own pass, so a seed's run is the same alone or in a batch (bit for bit on CPU)."),
    (("--snapshot-every",), "snapshot_every", int, "Record a snapshot every N steps."),
    (("--log-every",), "log_every", int, "Write metrics every N steps."),
    (("--hooks",), "hooks", str, "Hook points to record (* = one name part, ** = any, comma-separated)."),
    (("--activations",), "activations", click.Choice(ACTIVATIONS), "pooled (mean over tokens), full (all tokens) or none."),
    (("--gradients/--no-gradients",), "record_gradients", None, "Record d objective / d image."),
    (("--frames",), "frames", "flag", "Also write a PNG per snapshot."),
    (("--ablate-mode",), "ablate_mode", click.Choice(["mean", "zero"]),
     "What an --ablate component writes instead: its mean over the reference, or zero. [default: mean]"),
    (("--ablate-reference",), "ablate_reference", click.Path(),
     "A folder of images whose mean each --ablate component writes "
     "[default: 32 uniform-noise images at the run's size, seed 0]."),
    (("--out",), "out", str, "Parent folder of the run folders."),
    (("--name",), "name", str, "Run folder name (default: UTC time and prompt slug)."),
]

# Long flags that set a parameterization's option (each is `-P <option>=VALUE`).
PARAM_FLAGS: list[tuple[str, object, str]] = [
    ("--sigma", float, "pixels, fourier: std of the initial noise."),
    ("--init-mean", float, "pixels: mean of the initial noise."),
    ("--init-tint", float, "pixels: std of a per-seed colour offset, so seeds start from different hues."),
    ("--clamp/--no-clamp", None, "pixels: clamp to [0,1] (straight-through gradient)."),
    ("--init-image", click.Path(), "pixels, vqgan, cvae, sdvae: start from this image (.npy: a raw [3,H,W] float tensor)."),
    ("--vqgan", str, "vqgan: a bundled VQGAN (toy)."),
    ("--vqgan-config", click.Path(), "vqgan: the model's yaml."),
    ("--vqgan-checkpoint", click.Path(), "vqgan: the model's checkpoint."),
    ("--noise-factor", float, "vqgan: noise added to z each step."),
    ("--vqgan-init", click.Choice(["codes", "noise", "image"]), "vqgan: start from random codes, noise, or --init-image."),
    ("--vqgan-quantize/--no-vqgan-quantize", None, "vqgan: snap z to the codebook (straight-through)."),
    ("--cvae", click.Path(), "cvae: the trained CVAE checkpoint (or toy)."),
    ("--cvae-text", str, "cvae: the sentence whose embedding starts the condition (default: the prompt)."),
    ("--cvae-optimize-condition", "flag", "cvae: optimize the condition vector too."),
    ("--reference", click.Path(), "maco: a folder of images whose mean amplitude spectrum the image keeps "
                                  "[default: the 1/f law of natural images]."),
    ("--vae", str, "sdvae: the AutoencoderKL: hf:ID, a diffusers folder, a .safetensors file or random:sd "
                   "(-P checkpoint_decoder=true saves memory)."),
]


# `ascend --help` in sections, each option under the part of the method it sets.
SECTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("Prompt", ("expand_n", "llm_model", "llm_base_url", "image_prompts", "similarity", "temperature", "text_context")),
    ("Model", ("models", "device", "normalize")),
    ("Parameterization", ("param", "param_option", "size", *(
        f.split("/")[0].lstrip("-").replace("-", "_") for f, _, _ in PARAM_FLAGS))),
    ("Augmentation", ("cutouts", "cut_min", "cut_max", "jitter", "aug_noise", "augment_fixed")),
    ("Optimisation", ("steps", "lr", "optimizer", "weight_decay", "lr_schedule", "seed", "seeds")),
    ("Terms", ("terms", "tv", "tv_reduction", "memory", "range", "style", "accentuate", "accent_weight", "accent_layers")),
    ("Ablation", ("ablate", "ablate_mode", "ablate_reference")),
    ("Recording", ("snapshot_every", "log_every", "hooks", "activations", "record_gradients", "frames", "out", "name")),
    ("Performance", ("cutout_batch", "precision", "compile", "checkpoint_activations", "deterministic", "batch_invariant",
                     "force_precision")),
    ("Run", ("preset", "resume", "quiet", "help")),
]


class SectionedCommand(click.Command):
    """A command whose help lists the presets in one line each, then its options by section."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Presets"):
            formatter.write_dl([(name, PRESETS[name].description.split(": ")[0].split(". ")[0] + ".")
                                for name in list_presets()])
        help_option = self.get_help_option(ctx)
        records = {("help" if p is help_option else p.name): p.get_help_record(ctx)
                   for p in self.get_params(ctx) if isinstance(p, click.Option)}
        placed = set()
        for title, names in SECTIONS:
            rows = [records[n] for n in names if records.get(n)]
            placed.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [r for n, r in records.items() if r and n not in placed]
        if rest:
            with formatter.section("Other options"):
                formatter.write_dl(rest)


def _preset_values(name: str) -> str:
    """'[default: X; zer0int: Y]' from the presets, for one flat option."""
    shown = []
    for preset in list_presets():
        values = {**PRESETS[preset].values}
        for param, opts in PRESETS[preset].param_defaults.items():
            if param == "pixels":
                values.update({flag: opts[o] for flag, o in PARAM_ALIASES.items() if o in opts})
        if name in values:
            value = values[name]
            shown.append(f"{preset}: {'on' if value is True else 'off' if value is False else value}")
    return f" [{'; '.join(shown)}]" if shown else ""


def _option(flags: tuple[str, ...], dest: str, kind, help_text: str):
    if kind == "flag":
        return click.option(*flags, dest, is_flag=True, default=None, help=help_text + _preset_values(dest))
    if kind is None:  # --x/--no-x
        return click.option(*flags, dest, default=None, help=help_text + _preset_values(dest))
    return click.option(*flags, dest, type=kind, default=None, help=help_text + _preset_values(dest))


def _ascend_options(fn):
    for flags, dest, kind, help_text in reversed(OPTIONS):
        fn = _option(flags, dest, kind, help_text)(fn)
    for flag, kind, help_text in reversed(PARAM_FLAGS):
        dest = flag.split("/")[0].lstrip("-").replace("-", "_")
        fn = _option((flag,), dest, kind, help_text)(fn)
    return fn


def parse_param_options(values: tuple[str, ...]) -> dict[str, str]:
    """``("sigma=0.2", "decay=1.5")`` -> ``{"sigma": "0.2", "decay": "1.5"}`` (typed later by the factory)."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ClipxaiError(f"-P takes KEY=VALUE (got '{item}').")
        out[key.strip()] = value.strip()
    return out


@click.command("ascend", cls=SectionedCommand)
@click.argument("prompt", required=False)  # optional when a --term is given
@click.option("--preset", type=click.Choice(list_presets()), default=None,
              help="Named defaults; any option given overrides them. [default: default]")
@click.option("--model", "models", multiple=True, metavar="MODEL[:W]",
              help="CLIP: ViT-B/32 and other OpenAI names, toy, a .pt/.safetensors file, openclip:ARCH/TAG, "
                   "openclip:DIR, hf:ID, hf:DIR, random:<arch> (see `clipxai models`). Repeat for an ensemble, "
                   "with an optional weight (--model toy --model toy-b:0.5). [default: ViT-B/32; zer0int: ViT-L/14]")
@click.option("--size", nargs=2, type=int, metavar="W H", default=None,
              help="Image size. [default: the model's input resolution]")
@_ascend_options
@click.option("-P", "--param-option", "param_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the parameterization (repeatable), e.g. -P sigma=0.2 -P decay=1.5.")
@click.option("--term", "--loss", "terms", multiple=True, metavar="SPEC[=W]",
              help="Extra term to maximize, times W: a name (`clipxai terms`), file.py:fn or module:fn.")
@click.option("--ablate", "ablate", multiple=True, metavar="COMPONENT[@MODEL]",
              help="Run the ascent without this component of the image tower (repeatable): head:LAYER:HEAD, "
                   "mlp:LAYER (from 0), blocks.7.attn.head3, blocks.7.mlp or the model's module name; @MODEL picks "
                   "one model of an ensemble (default: every model that has it).")
@click.option("--image-prompt", "image_prompts", multiple=True, metavar="FILE[:W]",
              help="An image whose CLIP embedding is a prompt.")
@click.option("--expand", "expand_n", type=int, default=None, is_flag=False, flag_value=1, metavar="[N]",
              help="Replace the prompt by N LLM expansions (weighted equally; N defaults to 1); see `clipxai expand`.")
@click.option("--llm-model", default=None, help="expand: model name at the LLM endpoint.")
@click.option("--llm-base-url", default=None, help="expand: OpenAI-compatible base URL (local servers welcome).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--resume", type=click.Path(), default=None, help="Continue an interrupted run folder.")
def ascend_command(prompt, resume, quiet, param_option, expand_n, llm_model, llm_base_url, models, **options):
    """Optimize an image from noise toward PROMPT ("text:w|text:-w"), or the --term objectives alone, and record the run."""
    if not resume:
        _refuse_an_unreachable_model(models, options.get("preset"))
    from clipxai.ascent.run import ascend  # noqa: PLC0415  (torch and clip load only when a command runs)

    if models:
        options["model"] = models[0] if len(models) == 1 else list(models)

    options = {k: (list(v) if isinstance(v, tuple) and k in ("terms", "image_prompts", "ablate") else v)
               for k, v in options.items() if v not in (None, ())}
    if param_option:
        options["param_options"] = parse_param_options(param_option)
    try:
        runs = _ascend(ascend, prompt, resume, quiet, expand_n, llm_model, llm_base_url, options)
    except KeyboardInterrupt as err:  # a second Ctrl-C: stopped at once, still resumable
        paths = getattr(err, "run_paths", [])
        for path in paths:
            click.echo(str(path))
        click.echo("stopped at once (a second Ctrl-C)" + ("; continue with: " + " ; ".join(
            f"clipxai ascend --resume {p}" for p in paths) if paths else ""), err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    for run in runs:
        click.echo(str(run.path))
    if any(run.status != "complete" for run in runs):
        click.echo(f"stopped early ({runs[0].manifest.get('stop_reason', 'interrupted')}); continue with: "
                   + " ; ".join(f"clipxai ascend --resume {run.path}" for run in runs), err=True)
        raise SystemExit(EXIT_INTERRUPTED)


def _refuse_an_unreachable_model(models, preset) -> None:
    """A named OpenAI model that is neither cached nor reachable is said at once, before torch loads."""
    from clipxai.models.offline import unreachable_named_model  # noqa: PLC0415

    chosen = PRESETS.get(preset or "default")
    specs = list(models) or [chosen.values.get("model", DEFAULT_MODEL) if chosen else DEFAULT_MODEL]
    for name, _ in model_specs(specs):
        why = unreachable_named_model(name)
        if why:
            raise ClipxaiError(why)


def _ascend(ascend, prompt, resume, quiet, expand_n, llm_model, llm_base_url, options):
    if resume:
        if prompt:
            raise ClipxaiError("Give either a PROMPT or --resume RUN, not both.")
        given = [flag for flag, value in (("--expand", expand_n), ("--llm-model", llm_model),
                                          ("--llm-base-url", llm_base_url)) if value is not None]
        if given:
            raise ClipxaiError(f"Only --steps, --device and --quiet can change on resume, with --force-precision "
                               f"where needed (got {', '.join(given)}).")

        def call():
            return ascend(resume=resume, quiet=quiet, **options)
    else:
        if prompt is None and not options.get("terms"):
            raise ClipxaiError("The prompt is missing; run `clipxai ascend \"a red heart\"` "
                               "(or give a --term such as neuron:LAYER:UNIT to ascend without one).")
        if expand_n is not None and not 1 <= expand_n <= 64:
            raise ClipxaiError(f"--expand takes a number of expansions from 1 to 64 (got {expand_n}).")
        expand = {"n": expand_n, "model": llm_model, "base_url": llm_base_url} if expand_n else None

        def call():
            return ascend(prompt, expand=expand, quiet=quiet, **options)
    try:
        return call()
    except (NonFiniteLossError, TermError) as err:   # the run stopped; its folders keep what it recorded
        paths = getattr(err, "run_paths", [])
        if not paths:
            raise
        click.echo(f"error: {err}", err=True)
        for path in paths:
            click.echo(str(path))
        raise SystemExit(err.exit_code) from err


@click.command("terms")
@click.argument("pattern", default="*")
def terms_command(pattern):
    """List the terms --term accepts (built-in and plugins), one line each."""
    from clipxai.terms.base import list_terms  # noqa: PLC0415

    rows = list_terms(pattern)
    width = max((len(n) for n, _ in rows), default=0)
    for name, desc in rows:
        click.echo(f"{name:<{width}}  {desc}")
    click.echo("Also: any file.py:function or package.module:function returning a scalar to maximize.")


@click.command("models")
def models_command():
    """List the models --model can load on this machine offline, and where each lies."""
    from clipxai.models.catalog import format_catalog, offline_catalog  # noqa: PLC0415

    click.echo(format_catalog(offline_catalog()))
