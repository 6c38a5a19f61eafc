"""Model loading: every path ends in the same frozen ClipModel, or one clear sentence."""

import time

import pytest
import torch

from clipxai.errors import ModelLoadError
from clipxai.models import load_clip, pool_activation


def test_state_dict_file_reloads_exactly(tiny_module, tiny_clip_file):
    m = load_clip(str(tiny_clip_file), "cpu")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = tiny_module.encode_image((x - m._mean) / m._std)
    assert torch.equal(m.encode_image(x), expected)  # no fp16 rounding on the way
    assert not any(p.requires_grad for p in m.module.parameters())
    assert not m.module.training
    assert len(m.sha256) == 64 and m.input_resolution == 32 and m.context_length == 16


def test_torchscript_file_loads(tmp_path, tiny_module):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(tiny_module.visual.conv1), path)  # a valid archive, but not CLIP
    with pytest.raises(ModelLoadError, match="not an OpenAI-format CLIP"):
        load_clip(str(path), "cpu")


def test_clip_load_accepts_our_state_dict_files(tiny_clip_file):
    import clip
    model, _ = clip.load(str(tiny_clip_file), device="cpu", jit=False)
    assert model.visual.input_resolution == 32


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"\x00garbage" * 10, "could not be read"),
    ("truncated", "could not be read"),
    ("not-clip", "not an OpenAI-format CLIP"),
])
def test_bad_model_files_are_one_sentence(tmp_path, tiny_clip_file, content, message):
    path = tmp_path / "model.pt"
    if content == "truncated":
        path.write_bytes(tiny_clip_file.read_bytes()[:5000])
    elif content == "not-clip":
        torch.save({"weight": torch.zeros(3)}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as info:
        load_clip(str(path), "cpu")
    assert "\n" not in str(info.value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelLoadError, match="neither a known model nor an existing file.*ViT-B/32"):
        load_clip("ViT-Q/99", "cpu")


def test_named_model_offline_fails_fast_naming_cache_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPXAI_CLIP_CACHE", str(tmp_path / "cache"))
    import clip
    monkeypatch.setitem(clip.clip._MODELS, "ViT-B/32", "http://127.0.0.1:9/models/abc/ViT-B-32.pt")
    t = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_clip("ViT-B/32", "cpu")
    assert time.perf_counter() - t < 30
    assert str(tmp_path / "cache") in str(info.value) and "ViT-B-32.pt" in str(info.value)


def test_named_model_found_in_cache_is_loaded(tmp_path, monkeypatch, tiny_clip_file):
    monkeypatch.setenv("CLIPXAI_CLIP_CACHE", str(tmp_path))
    import clip
    monkeypatch.setitem(clip.clip._MODELS, "ViT-B/32", "http://127.0.0.1:9/models/abc/ViT-B-32.pt")
    (tmp_path / "ViT-B-32.pt").write_bytes(tiny_clip_file.read_bytes())
    assert load_clip("ViT-B/32", "cpu").input_resolution == 32


def test_random_architecture_and_hook_patterns():
    m = load_clip("random:tiny", "cpu")
    assert m.hook_points() == ["visual.transformer.resblocks.0", "visual.transformer.resblocks.1"]
    assert m.hook_points("visual.transformer.resblocks.1.*") == [
        "visual.transformer.resblocks.1.attn", "visual.transformer.resblocks.1.ln_1",
        "visual.transformer.resblocks.1.mlp", "visual.transformer.resblocks.1.ln_2"]
    assert "visual.transformer.resblocks.0.mlp.c_fc" in m.hook_points("visual.**.c_fc")
    with pytest.raises(ModelLoadError, match="names no architecture"):
        load_clip("random:huge", "cpu")


def test_pooling_is_batch_first_for_sequence_first_outputs():
    lnd = torch.arange(5 * 2 * 3, dtype=torch.float32).view(5, 2, 3)  # tokens, batch, width
    pooled = pool_activation(lnd, batch=2, full=False)
    assert torch.equal(pooled, lnd.mean(0))
    assert torch.equal(pool_activation(lnd, batch=2, full=True), lnd.permute(1, 0, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_keeps_fp32_weights_and_the_encoder_autocasts_to_fp32_features(tiny_module):
    from clipxai.ascent.compute import Encoder
    from clipxai.models import wrap_module
    m = wrap_module(tiny_module, device="cuda")
    assert m.dtype == torch.float32
    for precision in ("auto", "bf16", "fp16"):
        encoder = Encoder(m, normalize=True, precision=precision)
        out = encoder(torch.rand(2, 3, 32, 32, device="cuda"))
        assert encoder.precision in ("bf16", "fp16")
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_text_encoding_trims_padding_without_changing_results(tiny_clip):
    texts = ["a photo of a dog.", "x", "a long phrase about a red heart drawn in chalk on a wall",
             "cat", "two wedding rings on a table"]
    with torch.no_grad():
        full = tiny_clip.module.encode_text(tiny_clip.tokenize(texts)).float()  # padding included
    seen = []
    hook = tiny_clip.module.token_embedding.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    try:
        trimmed = tiny_clip.encode_text(texts, batch_size=2)
    finally:
        hook.remove()
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=0)
    assert all(shape[1] < tiny_clip.context_length for shape in seen[:2])  # short texts, short batches


def test_public_names_stay_importable():
    from clipxai import models
    for name in ("load_clip", "wrap_module", "random_clip", "ClipModel", "DEFAULT_HOOKS", "DEFAULT_MODEL",
                 "resolve_device", "file_sha256", "state_dict_sha256", "OPENAI_MEAN", "OPENAI_STD", "list_models",
                 "ARCHITECTURES"):
        assert hasattr(models, name), name
    assert models.DEFAULT_HOOKS == "visual.transformer.resblocks.*"


def test_capture_knows_the_layout_even_when_batch_equals_tokens(tiny_clip):
    """17 images of 17 tokens: the shape cannot tell (tokens, batch) from (batch, tokens); the backend can."""
    x = torch.rand(17, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    name = tiny_clip.hook_points()[0]
    with tiny_clip.capture([name], batch=17, full=True) as acts, torch.no_grad():
        tiny_clip.encode_image(x)
    with tiny_clip.capture([name], batch=1, full=True) as one, torch.no_grad():
        tiny_clip.encode_image(x[3:4])
    assert acts[name].shape == (17, 17, 64)
    torch.testing.assert_close(acts[name][3], one[name][0], atol=1e-5, rtol=0)


def test_the_fast_clip_tokenizer_gives_clips_own_ids():
    import clip

    from clipxai.models.tokenizers import ClipBPE
    texts = ["a photo of heart.", "  Two   WEDDING rings!  ", "café au lait", "fish &amp; chips", "x" * 200,
             "❤️", "a long " * 40, ""]
    for context in (77, 16):
        assert torch.equal(ClipBPE()(texts, context), clip.tokenize(texts, context_length=context, truncate=True))
