"""The ``clipxai`` command line: a thin click group over the public API.

Subcommands live beside the code they drive and are imported only when used, so
``clipxai --help`` stays fast and a missing optional extra breaks only its own command.
Errors meant for users (``ClipxaiError``) print as one sentence with a non-zero exit;
``--debug`` shows the traceback of anything.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import warnings

import click

from clipxai.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ClipxaiError
from clipxai.util.registry import Registry

# name -> "module:attribute" of a click command
COMMANDS = Registry("command", {
    "ascend": "clipxai.cli.ascend:ascend_command",
    "terms": "clipxai.cli.ascend:terms_command",
    "losses": "clipxai.cli.ascend:terms_command",   # the first name of `terms`
    "models": "clipxai.cli.ascend:models_command",
    "analyze": "clipxai.cli.analysis:analyze_command",
    "report": "clipxai.cli.analysis:report_command",
    "compare": "clipxai.cli.analysis:compare_command",
    "runs": "clipxai.cli.runlist:runs_command",
    "video": "clipxai.cli.video:video_command",
    "toy": "clipxai.cli.toy:toy_group",
    "demo": "clipxai.cli.demo:demo_command",
    "expand": "clipxai.cli.expand:expand_command",
    "neighbors": "clipxai.cli.neighbors:neighbors_command",
    "cvae": "clipxai.cli.cvae:cvae_group",
    "view": "clipxai.cli.view:view_command",
    "sweep": "clipxai.cli.sweep:sweep_command",
    "atlas": "clipxai.cli.sweep:atlas_command",
    "opinion": "clipxai.cli.opinion:opinion_command",
    "explain": "clipxai.cli.explain:explain_command",
    "evaluate": "clipxai.cli.evaluate:evaluate_command",
})


# name -> one line for `clipxai --help`, so listing the commands imports none of them
SUMMARIES = {
    "ascend": "Optimize an image from noise toward a prompt and record the run.",
    "terms": "List the terms --term accepts.",
    "losses": "The first name of `terms`.",
    "models": "List the models --model accepts offline, and where they are.",
    "analyze": "Find the states a run visits and how it moves; write RUN/analysis/.",
    "report": "Write one self-contained HTML report for one or more runs.",
    "compare": "Put several runs side by side.",
    "runs": "List the runs in a folder: status, prompt, model, steps, verdict, age.",
    "video": "Make an MP4 or GIF of a run's snapshots, captioned with step and similarity.",
    "toy": "Train, evaluate and sample the toy world's CLIPs.",
    "demo": "The whole experiment offline on the toy CLIP, with a report.",
    "expand": "Ask an LLM for variants of a prompt.",
    "neighbors": "CLIP's own nearest words to a text.",
    "cvae": "Train, sample and evaluate the CLIP-conditioned CVAE.",
    "view": "Browse runs in the browser: scrub, watch live, compare, start.",
    "opinion": "CLIP's own few words for a snapshot or a state, found by text ascent.",
    "explain": "Which components of CLIP make each state, where in the image, and whether ablating them matters.",
    "evaluate": "Is it really there? Each state and the final image on other models, perturbations, written words.",
    "sweep": "Run a grid of ascents (prompts x seeds x models), here or on Ray; rerun to continue.",
    "atlas": "The concept atlas of a sweep: atlas.csv and a self-contained atlas.html.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def format_commands(self, ctx, formatter):
        """The command list from ``SUMMARIES`` (importing a command's module only when it has none)."""
        rows = []
        for name in self.list_commands(ctx):
            summary = SUMMARIES.get(name)
            if summary is None:
                cmd = self.get_command(ctx, name)
                summary = cmd.get_short_help_str(limit=80) if cmd is not None else ""
            rows.append((name, summary))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            reason = str(err)

            @click.command(name, help=f"(unavailable: {reason})",
                           context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args):
                raise ClipxaiError(f"The '{name}' command is not available in this install ({reason}).")
            return unavailable


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="clipxai")
@click.pass_context
def cli(ctx, debug):
    """See what CLIP thinks a word looks like: ascend toward a prompt, then analyze the run."""
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (importable, testable)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)   # after "--" every word is the command's
    debug = "--debug" in argv[:end] or os.environ.get("CLIPXAI_DEBUG") == "1"
    if "--debug" in argv[:end]:   # accepted anywhere before "--", as the error messages suggest it
        argv = ["--debug", *[a for a in argv[:end] if a != "--debug"], *argv[end:]]
    try:
        cli.main(args=argv, prog_name="clipxai", standalone_mode=False)
        return EXIT_OK
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_FAILED
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except ClipxaiError as e:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001  (a bug: one line unless --debug)
        if debug:
            traceback.print_exc()
        click.echo(f"error: unexpected {type(e).__name__}: {e} (run with --debug for the traceback)", err=True)
        return EXIT_FAILED


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
