"""``clipxai neighbors PROMPT``: the words of CLIP's vocabulary nearest to a prompt."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clipxai.analysis.words.vocab import (
    DEFAULT_TEMPLATES,
    VocabError,
    cache_path,
    default_cache_dir,
    model_words,
    rank,
    read_word_file,
    vocabulary_embeddings,
)


@click.command("neighbors")
@click.argument("prompt")
@click.option("--model", "model_name", default="ViT-B/32", show_default=True,
              help="Any --model form: a CLIP name, a weights file or folder, toy, openclip:..., hf:..., random:...")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("-k", "--top", "top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many neighbours to print.")
@click.option("--phrases", type=click.Path(dir_okay=False, path_type=Path),
              help="A file of extra words or phrases (one per line) to search besides the model's words.")
@click.option("--only", type=click.Path(dir_okay=False, path_type=Path),
              help="Search only the words or phrases in this file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def neighbors_command(prompt, model_name, device, top, phrases, only, as_json):
    """Print CLIP's own words nearest to the text embedding of PROMPT."""
    from clipxai.models.load import load_clip  # noqa: PLC0415  (keeps `--help` fast)

    if not prompt.strip():
        raise VocabError("The prompt is empty; give the text whose neighbours you want.")
    words = read_word_file(only) if only else None
    extra = read_word_file(phrases) if phrases else []
    model = load_clip(model_name, device=device)
    words = list(dict.fromkeys((words or model_words(model)) + extra))

    progress = None
    if not cache_path(model, words).is_file():
        click.echo(f"Embedding {len(words)} words with {model.name} (once; cached in "
                   f"{default_cache_dir()}).", err=True)
        if sys.stderr.isatty():
            def progress(done, total):
                click.echo(f"\r  {done}/{total} words", nl=done == total, err=True)
    vocab = vocabulary_embeddings(model, words, progress=progress)
    ranked = rank(model.encode_text([prompt])[0], vocab, words, k=top)[0]

    if as_json:
        click.echo(json.dumps({
            "prompt": prompt,
            "model": model.name,
            "templates": list(DEFAULT_TEMPLATES),
            "neighbors": [{"word": w, "cosine": round(s, 6)} for w, s in ranked],
        }, ensure_ascii=False, indent=2))
    else:
        for word, sim in ranked:
            click.echo(f"{sim:7.4f}  {word}")
