"""bf16 and fp16 on a CPU without instructions for them: refused in one sentence before any folder,
unless --force-precision; read from the CPU's own features (clipxai.util.cpu)."""

from __future__ import annotations

import sys

import pytest
import torch

import clipxai
from clipxai.ascent.compute import SLOW_STEP_RATIO, check_precision
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.util import cpu

AVX2_ONLY = {"avx2": True, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False,
             "avx512_fp16": False, "amx_fp16": False}
WITH_BF16 = {**AVX2_ONLY, "avx512_f": True, "avx512_bf16": True}
WITH_FP16 = {**AVX2_ONLY, "avx512_f": True, "amx_fp16": True}
FAST = dict(quiet=True, cutouts=2, steps=3, snapshot_every=1)


def features(monkeypatch, value):
    monkeypatch.setattr(cpu, "cpu_features", lambda: value)


def ascend(tiny_clip, out, **options):
    return clipxai.ascend("a red heart", model_obj=tiny_clip, out=out, **{**FAST, **options})


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_refused_on_a_cpu_without_its_instructions_and_nothing_is_written(tiny_clip, tmp_path, monkeypatch, precision):
    features(monkeypatch, AVX2_ONLY)
    out = tmp_path / "runs"
    with pytest.raises(ClipxaiError) as err:
        ascend(tiny_clip, out, precision=precision)
    message = str(err.value)
    assert f"--precision {precision} is refused on this CPU" in message
    assert f"about {SLOW_STEP_RATIO[precision]}x as long" in message and "--force-precision" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert not out.exists()


@pytest.mark.parametrize("precision, have", [("bf16", WITH_BF16), ("fp16", WITH_FP16)])
def test_runs_where_the_cpu_has_the_instructions(tiny_clip, tmp_path, monkeypatch, precision, have):
    features(monkeypatch, have)
    [run] = ascend(tiny_clip, tmp_path / "runs", precision=precision)
    assert run.status == "complete" and run.manifest["compute"]["precision"] == precision


def test_force_precision_runs_it_anyway_and_fp32_is_never_refused(tiny_clip, tmp_path, monkeypatch):
    features(monkeypatch, AVX2_ONLY)
    [forced] = ascend(tiny_clip, tmp_path / "runs", name="forced", precision="bf16", force_precision=True)
    assert forced.status == "complete" and forced.manifest["compute"]["precision"] == "bf16"
    assert forced.option("force_precision") is True
    [plain] = ascend(tiny_clip, tmp_path / "runs", name="plain", precision="fp32")
    assert plain.status == "complete"


def test_the_cli_refuses_in_one_line_with_exit_2_and_force_precision_passes(tmp_path, monkeypatch, capsys):
    features(monkeypatch, AVX2_ONLY)
    out = tmp_path / "runs"
    argv = ["ascend", "dog", "--precision", "bf16", "--model", "random:tiny", "--steps", "3", "--snapshot-every", "1",
            "--cutouts", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bf16 is refused on this CPU" in err and "Traceback" not in err
    assert not out.exists()
    assert main([*argv, "--force-precision"]) == 0
    [folder] = out.iterdir()
    assert (folder / "run.json").is_file()


def test_unknown_features_warn_and_run(tiny_clip, tmp_path, monkeypatch):
    features(monkeypatch, None)
    with pytest.warns(UserWarning, match="cannot tell"):
        [run] = ascend(tiny_clip, tmp_path / "runs", precision="bf16")
    assert run.status == "complete"


def test_gpus_are_not_concerned(monkeypatch):
    features(monkeypatch, AVX2_ONLY)
    for device in ("cuda", "cuda:1", "mps"):
        check_precision("bf16", torch.device(device))  # no CUDA needed: nothing is asked of the device
    with pytest.raises(ClipxaiError):
        check_precision("bf16", torch.device("cpu"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/cpuinfo is Linux's")
def test_the_proc_cpuinfo_fallback_agrees_with_torchs_own_query(monkeypatch):
    from_torch = cpu.cpu_features()
    assert from_torch is not None and all(isinstance(v, bool) for v in from_torch.values())
    monkeypatch.setattr(cpu, "_capabilities", lambda: None)
    from_proc = cpu.cpu_features()
    for name in ("avx2", "avx512_f", "avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16"):
        if name in from_torch:
            assert from_proc[name] == from_torch[name], name
    line = cpu.describe_cpu()
    assert cpu.cpu_name() in line and ("avx2 yes" in line or "avx2 no" in line or "bf16" in line)


def test_a_bf16_run_resumed_on_a_cpu_without_bf16_needs_force_precision(tiny_clip, tmp_path, monkeypatch):
    from helpers_runs import StopAt
    features(monkeypatch, WITH_BF16)
    [part] = ascend(tiny_clip, tmp_path / "runs", precision="bf16", steps=6, callbacks=[StopAt(2)])
    assert part.status == "interrupted"
    features(monkeypatch, AVX2_ONLY)  # the folder moved to another machine
    with pytest.raises(ClipxaiError, match="bf16 is refused on this CPU"):
        clipxai.ascend(resume=part.path, model_obj=tiny_clip, quiet=True)
    assert clipxai.load_run(part.path).status == "interrupted"
    [done] = clipxai.ascend(resume=part.path, model_obj=tiny_clip, quiet=True, force_precision=True)
    assert done.status == "complete" and done.manifest["steps_done"] == 6
