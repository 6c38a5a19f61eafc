"""SigLIP through transformers fits the same interface: its own normalisation, tokenizer and head.

SigLIP's text tower reads the last position, so texts always see the whole context; it is
trained with a sigmoid (``logit_bias`` is set), which the model's description records.
"""

import pytest
import torch

import clipxai
from clipxai.models import load_clip

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

WORDS = "a red heart on the wall blue square cat dog".split()


def _first(x):
    return x[0] if isinstance(x, list) else x


def _pooled(out):
    return out.pooler_output if hasattr(out, "pooler_output") else out  # transformers 5 returns an output object


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    """A tiny random SiglipModel with a word-level SentencePiece-style tokenizer, save_pretrained."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    vocab = ["<pad>", "</s>", "<unk>"] + ["▁" + w for w in WORDS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>")
    cfg = transformers.SiglipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=8, pad_token_id=0, eos_token_id=1),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8))
    torch.manual_seed(0)
    model = transformers.SiglipModel(cfg)
    folder = tmp_path_factory.mktemp("siglip")
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def siglip(siglip_dir):
    return load_clip(f"hf:{siglip_dir}", "cpu")


def test_features_are_siglips_own(siglip, siglip_dir):
    ref = transformers.SiglipModel.from_pretrained(str(siglip_dir), local_files_only=True).eval()
    x = torch.rand(2, 3, 32, 32)
    tokens = siglip.tokenize(["a red heart", "cat"])
    assert tokens.shape == (2, 8) and tokens[1].tolist()[:3] == [11, 1, 0]  # padded to the whole context
    with torch.no_grad():
        image = _pooled(ref.get_image_features(pixel_values=(x - 0.5) / 0.5))
        text = _pooled(ref.get_text_features(input_ids=tokens))
        assert (siglip.encode_image(x) - image).abs().max() < 1e-5
    assert (siglip.encode_text(["a red heart", "cat"]) - text).abs().max() < 1e-5


def test_what_differs_from_clip_is_recorded(siglip):
    d = siglip.describe()
    assert (d["backend"], d["similarity"], d["mean"], d["std"]) == ("hf", "sigmoid", [0.5] * 3, [0.5] * 3)
    assert siglip.logit_bias is not None and not siglip.trims_text
    assert torch.equal(siglip.encode_text(["a red heart"]), siglip.encode_text(["a red heart"], full_context=True))
    assert siglip.vocabulary() == sorted(WORDS[1:])  # "a" is one letter: not a word
    assert siglip.hook_points() == ["vision_model.encoder.layers.0", "vision_model.encoder.layers.1"]


def test_labels_rank_siglips_own_words(siglip):
    from clipxai.analysis.words.label import build_vocabulary
    words, description = build_vocabulary(None, False, model=siglip)
    assert words == siglip.vocabulary() and siglip.name in description


def test_siglip_ascends(siglip, tmp_path):
    run = _first(clipxai.ascend("a red heart", model_obj=siglip, steps=4, cutouts=2, quiet=True,
                                out=str(tmp_path), name="siglip", snapshot_every=1))
    assert run.n == 4 and run.embeddings.shape == (4, 64)
    assert [a.shape for a in run.activations.values()] == [(4, 64), (4, 64)]
    assert run.manifest["model"]["similarity"] == "sigmoid"
