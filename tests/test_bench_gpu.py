"""bench/gpu.py --dry-run: the GPU script runs every measurement on the CPU, so it cannot rot unseen."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_prints_every_figure_and_leaves_torch_as_it_was(capsys):
    gpu = load_script()
    compile_, threads = torch.compile, torch.get_num_threads()
    assert gpu.main(["--dry-run", "--json"]) == 0
    assert torch.compile is compile_ and torch.get_num_threads() == threads
    result = json.loads(capsys.readouterr().out)
    assert "CPU: " in result["header"] and ("avx2" in result["header"] or "bf16" in result["header"])
    measured = {what: figure for _, what, figure in result["rows"]}
    expected = [f"{k} seeds batched / {k} runs one after another" for k in gpu.SEEDS[1:]]
    expected += [f"{p} step / fp32 step (8 seeds)" for p in ("bf16", "fp16")] + ["--compile step / fp32 step (8 seeds)"]
    expected += [f"peak memory of an fp32 step above the model, {case}" for case in gpu.MEMORY_CASES]
    assert set(expected) <= set(measured), set(expected) - set(measured)
    for what in expected[:-len(gpu.MEMORY_CASES)]:   # every time ratio is a positive finite number
        value = float(re.match(r"[\d.]+", measured[what]).group())
        assert math.isfinite(value) and value > 0, (what, measured[what])
    assert all(measured[f"peak memory of an fp32 step above the model, {c}"] == "- (CPU)" for c in gpu.MEMORY_CASES)


def test_without_a_gpu_it_says_so_in_one_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert load_script().main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_every_bench_prints_the_cpu_it_ran_on():
    """One helper (clipxai.util.cpu.describe_cpu) names the CPU and its features in every bench's output."""
    missing = [p.name for p in sorted(SCRIPT.parent.glob("*.py")) if "describe_cpu()" not in p.read_text(encoding="utf-8")]
    assert not missing, f"benches that do not print their CPU: {missing}"
