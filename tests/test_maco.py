"""The maco parameterization (Fel et al. 2023): the phase is optimized, the amplitude spectrum stays fixed,
and the importance mask (accumulated |d objective / d image|) is recorded and resumed with the run."""

import json

import numpy as np
import torch
from helpers_runs import StopAt

import clipxai
from clipxai.cli.commands import main
from clipxai.params import make_param
from clipxai.params.fourier import _COLOR_CORRELATION, _MAX_NORM
from clipxai.params.maco import power_law_magnitude


def _make(shape=(32, 32), batch=2, **options):
    return make_param("maco", batch=batch, shape=shape, device=torch.device("cpu"),
                      generators=[torch.Generator().manual_seed(s) for s in range(batch)], **options)


def _amplitude(image: torch.Tensor) -> torch.Tensor:
    """The amplitude spectrum of each image before the sigmoid, in the decorrelated colour space, at the
    frequencies a real image holds once (the first and last columns of the half spectrum are their own
    mirror, so only their symmetric part survives the inverse transform), scaled to unit norm."""
    inverse = torch.linalg.inv(_COLOR_CORRELATION / _MAX_NORM)
    logits = torch.logit(image.double().clamp(1e-9, 1 - 1e-9))
    decorrelated = torch.einsum("kchw,dc->kdhw", logits, inverse.double())
    amplitude = torch.fft.rfft2(decorrelated, norm="ortho").abs()[..., 1:-1]
    return amplitude / amplitude.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def test_only_the_phase_changes_so_every_image_keeps_the_one_amplitude_spectrum():
    p = _make()
    assert [tuple(t.shape) for t in p.params] == [(2, 3, 32, 17)]
    start = p.image_fn().detach()
    assert start.shape == (2, 3, 32, 32) and 0 < start.min() and start.max() < 1
    assert not torch.equal(start[0], start[1])
    with torch.no_grad():
        p.params[0].add_(torch.randn(p.params[0].shape, generator=torch.Generator().manual_seed(9)))
    moved = p.image_fn().detach()
    assert (moved - start).abs().max() > 0.1            # the image changed ...
    spectra = _amplitude(torch.cat([start, moved]))     # ... its amplitude spectrum did not
    assert (spectra - spectra[:1]).abs().max() < 1e-3 * spectra.max()
    expected = power_law_magnitude((32, 32)).double().expand(3, -1, -1)[..., 1:-1]
    ratio = spectra[0] / expected
    assert ratio.std() < 1e-3 * ratio.mean()            # the 1/f law, up to one scale


def test_a_reference_folder_sets_the_spectrum_to_its_mean(tmp_path):
    from PIL import Image

    # vertical stripes: all their energy lies at one horizontal frequency, unlike 1/f
    x = np.arange(32)
    for i, period in enumerate((4, 8)):
        row = (127 + 120 * np.sin(2 * np.pi * x / period)).astype(np.uint8)
        Image.fromarray(np.stack([np.tile(row, (32, 1))] * 3, axis=-1)).save(tmp_path / f"stripes{i}.png")
    p = _make(reference=str(tmp_path))
    assert p.info["reference_images"] == 2 and len(p.info["reference_sha256"]) == 64
    spectrum = _amplitude(p.image_fn().detach())[0].sum(0)      # (H, W//2+1)
    columns = spectrum.sum(0)
    assert columns[[3, 7]].sum() > 0.8 * columns.sum()          # the stripes' frequencies 4 and 8 (the first column is cut)
    flat = _amplitude(_make().image_fn().detach())[0].sum(0).sum(0)
    assert flat[[3, 7]].sum() < 0.5 * flat.sum()


def test_the_importance_mask_is_recorded_as_the_accumulated_gradient_magnitude(tiny_clip, tmp_path):
    run = clipxai.ascend("a red heart", model_obj=tiny_clip, param="maco", steps=4, snapshot_every=1, cutouts=2,
                         out=str(tmp_path), quiet=True)[0]
    manifest = json.loads((run.path / "run.json").read_text())
    assert manifest["config"]["param"]["name"] == "maco" and manifest["param"]["kind"] == "maco"
    assert "MACO importance" in manifest["arrays"]["importance"]["meaning"]
    importance = run.array("importance").astype(np.float64)
    assert importance.shape == (4, 32, 32) and importance.min() >= 0
    # each row adds that step's |d objective / d image|, channel mean, to the rows before
    added = np.diff(np.concatenate([np.zeros((1, 32, 32)), importance]), axis=0)
    recorded = np.abs(run.gradients.astype(np.float64)).mean(axis=1)
    np.testing.assert_allclose(added, recorded, rtol=2e-3, atol=1e-6 * recorded.max())
    # the analysis draws it beside the image
    summary = clipxai.analyze(run, projections=(), labels=False, gif=False).write()
    assert summary["figures"]["importance"] == "figures/importance.png"
    assert (run.path / "analysis" / "figures" / "importance.png").stat().st_size > 1000


def test_a_resumed_maco_run_is_bit_identical_importance_included(tiny_clip, tmp_path):
    options = dict(model_obj=tiny_clip, param="maco", steps=8, snapshot_every=2, cutouts=2, out=str(tmp_path),
                   quiet=True)
    [full] = clipxai.ascend("a red heart", name="full", **options)
    [part] = clipxai.ascend("a red heart", name="part", callbacks=[StopAt(4)], **options)
    assert part.status == "interrupted"
    saved = torch.load(part.path / "checkpoint.pt", weights_only=True)["param_buffers"]["importance"]
    np.testing.assert_array_equal(saved.numpy(), part.array("importance")[-1][None])
    [resumed] = clipxai.ascend(resume=part.path, model_obj=tiny_clip, quiet=True)
    assert resumed.status == "complete"
    for name in ("images", "latents", "importance"):
        np.testing.assert_array_equal(resumed.array(name), full.array(name))


def test_maco_from_the_command_line_and_a_bad_reference_in_one_sentence(tmp_path, tiny_clip_file, capsys):
    out = tmp_path / "runs"
    code = main(["ascend", "x", "--model", str(tiny_clip_file), "--param", "maco", "--reference",
                 str(tmp_path / "nowhere"), "--steps", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "maco reference" in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())
    code = main(["ascend", "x", "--model", str(tiny_clip_file), "--param", "pixels", "--reference", str(tmp_path),
                 "--steps", "1", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--reference applies to --param maco" in err
    code = main(["ascend", "x", "--model", str(tiny_clip_file), "--param", "maco", "-P", "contrast=0",
                 "--steps", "3", "--out", str(tmp_path), "--quiet"])
    assert code == 2 and "contrast must be a positive number" in capsys.readouterr().err


def test_ascend_help_names_maco_and_its_reference(capsys):
    assert main(["ascend", "--help"]) == 0
    out = capsys.readouterr().out
    assert "maco" in out and "--reference" in out
