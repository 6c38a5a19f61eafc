"""``clipxai expand PROMPT``: visual captions for a prompt from an OpenAI-compatible LLM."""

from __future__ import annotations

import json

import click

from clipxai.ascent.expand import (
    DEFAULT_LLM_MODEL,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    EXPAND_TIMEOUT_ADVICE,
    MAX_TIMEOUT,
    endpoint_info,
    expand_prompt,
    read_system_prompt,
)


@click.command("expand")
@click.argument("prompt")
@click.option("-n", "n", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="How many distinct captions to print.")
@click.option("--llm-model", default=DEFAULT_LLM_MODEL, show_default=True,
              help="Model name as the server knows it (e.g. llama3.2 for Ollama).")
@click.option("--llm-base-url", default=None,
              help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 "
                   "[default: $OPENAI_BASE_URL, else OpenAI's].")
@click.option("--system-prompt", default=DEFAULT_SYSTEM_PROMPT,
              help="Instructions for the LLM, or @FILE to read them from a file.")
@click.option("--temperature", type=click.FloatRange(min=0.0, max=2.0), default=DEFAULT_TEMPERATURE,
              show_default=True, help="Sampling temperature (higher gives more varied captions).")
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True, max=MAX_TIMEOUT), default=30.0,
              show_default=True, help="Seconds each attempt may take, the whole answer included.")
@click.option("--retries", type=click.IntRange(min=0, max=10), default=2, show_default=True,
              help="Retries after a timeout, connection error, HTTP 429 or 5xx.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the captions and the endpoint.")
def expand_command(prompt, n, llm_model, llm_base_url, system_prompt, temperature, timeout,
                   retries, as_json):
    """Expand PROMPT into visual captions with an OpenAI-compatible LLM (key: $OPENAI_API_KEY)."""
    captions = expand_prompt(
        prompt, n=n, model=llm_model, base_url=llm_base_url,
        system_prompt=read_system_prompt(system_prompt), timeout=timeout, retries=retries,
        temperature=temperature, timeout_advice=EXPAND_TIMEOUT_ADVICE,
    )
    if as_json:
        click.echo(json.dumps({"prompt": prompt, "captions": captions,
                               **endpoint_info(llm_base_url, llm_model)},
                              ensure_ascii=False, indent=2))
    else:
        for caption in captions:
            click.echo(caption)
