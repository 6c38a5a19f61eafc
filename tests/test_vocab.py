"""CLIP's vocabulary, its cached embeddings, nearest words, and `clipxai neighbors`."""

import json

import numpy as np
import pytest
import torch

from clipxai.analysis.words import vocab
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError

WORDS = ["heart", "love", "ring", "mouth", "hands", "dog", "cat", "car", "tree", "sun"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty embedding cache."""
    monkeypatch.setenv("CLIPXAI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "vocab"


@pytest.fixture()
def count_encodes(monkeypatch):
    """Wrap the CLIP text encoder so a test can see how many texts were encoded, in which batches."""
    def install(model):
        calls = []
        original = model.module.encode_text

        def counting(tokens):
            calls.append(tokens.shape[0])
            return original(tokens)

        monkeypatch.setattr(model.module, "encode_text", counting)
        return calls
    return install


def expected_embeddings(model, words, templates):
    """The documented recipe, recomputed independently: mean of unit template embeddings, unit."""
    with torch.no_grad():
        per_template = []
        for t in templates:
            tok = model.tokenize([t.format(w) for w in words])
            e = model.module.encode_text(tok).float()
            per_template.append(e / e.norm(dim=-1, keepdim=True))
        m = torch.stack(per_template).mean(0)
    return m / m.norm(dim=-1, keepdim=True)


# -- clip_words ---------------------------------------------------------------------------

def test_clip_words_are_whole_single_token_words():
    from clipxai.models import _import_clip

    words = vocab.clip_words()
    assert len(words) > 20000
    assert words == sorted(set(words))
    assert all(len(w) >= 2 and w.isalpha() for w in words)
    assert {"heart", "dog", "love", "wedding"} <= set(words)
    # each is exactly one token of CLIP's tokenizer (a word-final BPE entry)
    sample = [w for w in words[:: len(words) // 300] if w.isascii()]
    tokens = _import_clip().tokenize(sample)
    assert ((tokens != 0).sum(dim=1) == 3).all()  # start, the word, end
    assert vocab.clip_words() == words  # cached copy, same content


# -- read_word_file -----------------------------------------------------------------------

def test_read_word_file_skips_blanks_comments_and_duplicates(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# my list\nheart\n\n  wedding   ring \nheart\n   # indented comment\nlove\n", "utf-8")
    assert vocab.read_word_file(path) == ["heart", "wedding ring", "love"]


@pytest.mark.parametrize("content, phrase", [
    (None, "does not exist"),
    (b"", "holds no words"),
    (b"# only a comment\n\n", "holds no words"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
    (b"caf\xe9\n", "not UTF-8"),
])
def test_read_word_file_rejects_unusable_files(tmp_path, content, phrase):
    path = tmp_path / "words.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ClipxaiError, match=phrase) as info:
        vocab.read_word_file(path)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")


# -- vocabulary_embeddings ----------------------------------------------------------------

def test_embeddings_follow_the_template_recipe(tiny_clip):
    templates = ("a photo of {}.", "{}")
    emb = vocab.vocabulary_embeddings(tiny_clip, WORDS, templates)
    assert emb.shape == (len(WORDS), tiny_clip.embed_dim) and emb.dtype == torch.float32
    assert emb.device.type == "cpu"
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(WORDS)))
    torch.testing.assert_close(emb, expected_embeddings(tiny_clip, WORDS, templates), atol=1e-5, rtol=0)


def test_second_call_reads_the_cache_without_encoding(tiny_clip, private_cache, count_encodes):
    calls = count_encodes(tiny_clip)
    first = vocab.vocabulary_embeddings(tiny_clip, WORDS)
    assert sum(calls) == len(WORDS) * len(vocab.DEFAULT_TEMPLATES)
    assert list(private_cache.glob("*.npy")), "the cache lives under $CLIPXAI_CACHE/vocab"
    calls.clear()
    second = vocab.vocabulary_embeddings(tiny_clip, WORDS)
    assert calls == []
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    # other words or other templates are a different key, so they are encoded afresh
    vocab.vocabulary_embeddings(tiny_clip, WORDS[:5])
    vocab.vocabulary_embeddings(tiny_clip, WORDS, templates=("{}",))
    assert calls == [5, 5, len(WORDS)]


def test_encoding_is_batched(tiny_clip, monkeypatch, count_encodes):
    monkeypatch.setattr(vocab, "_CHUNK", 4)
    calls = count_encodes(tiny_clip)
    emb = vocab.vocabulary_embeddings(tiny_clip, WORDS, templates=("{}",))
    assert calls == [4, 4, 2]
    torch.testing.assert_close(emb, expected_embeddings(tiny_clip, WORDS, ("{}",)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_shape", "nan"])
def test_a_corrupt_cache_file_is_recomputed(tiny_clip, damage, count_encodes):
    good = vocab.vocabulary_embeddings(tiny_clip, WORDS)
    path = vocab.cache_path(tiny_clip, WORDS)
    if damage == "garbage":
        path.write_bytes(b"not a numpy file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "wrong_shape":
        np.save(path, np.zeros((3, 3), np.float32))
    else:
        bad = good.numpy().copy()
        bad[0, 0] = np.nan
        np.save(path, bad)
    calls = count_encodes(tiny_clip)
    again = vocab.vocabulary_embeddings(tiny_clip, WORDS)
    assert sum(calls) > 0
    torch.testing.assert_close(again, good, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.from_numpy(np.load(path)), good, atol=1e-6, rtol=0)


def test_cache_is_keyed_by_the_model_weights(tiny_clip, tiny_module):
    from clipxai.models import random_clip, wrap_module

    other = wrap_module(random_clip("tiny", seed=1), name="tiny", device="cpu")
    assert vocab.cache_path(tiny_clip, WORDS) != vocab.cache_path(other, WORDS)
    a = vocab.vocabulary_embeddings(tiny_clip, WORDS)
    b = vocab.vocabulary_embeddings(other, WORDS)
    assert not torch.allclose(a, b)


# -- nearest ------------------------------------------------------------------------------

def test_nearest_ranks_by_cosine(tiny_clip):
    emb = expected_embeddings(tiny_clip, WORDS, vocab.DEFAULT_TEMPLATES)
    queries = torch.randn(3, tiny_clip.embed_dim, generator=torch.Generator().manual_seed(0)) * 5
    result = vocab.nearest(tiny_clip, queries.numpy(), WORDS, k=4)
    sims = (queries / queries.norm(dim=1, keepdim=True)) @ emb.T
    assert len(result) == 3
    for row, ranked in zip(sims, result):
        order = row.argsort(descending=True)[:4]
        assert [w for w, _ in ranked] == [WORDS[i] for i in order]
        np.testing.assert_allclose([s for _, s in ranked], row[order].numpy(), atol=1e-5)
    # a single (D,) query gives one ranked list; k beyond the vocabulary is clipped
    single = vocab.nearest(tiny_clip, queries[0], WORDS, k=100)
    assert len(single) == 1 and len(single[0]) == len(WORDS)
    assert [w for w, _ in single[0][:4]] == [w for w, _ in result[0]]


def test_nearest_finds_a_word_from_its_own_embedding(tiny_clip):
    emb = vocab.vocabulary_embeddings(tiny_clip, WORDS)
    for i, word in enumerate(WORDS):
        assert vocab.nearest(tiny_clip, emb[i], WORDS, k=1)[0][0][0] == word


def test_nearest_rejects_a_query_of_the_wrong_size(tiny_clip):
    with pytest.raises(ClipxaiError, match="dimensions"):
        vocab.nearest(tiny_clip, torch.ones(7), WORDS)


# -- the neighbors command ----------------------------------------------------------------

def test_neighbors_command_ranks_like_an_independent_computation(tmp_path, tiny_clip, capsys):
    only = tmp_path / "only.txt"
    only.write_text("\n".join(WORDS[:6]) + "\n", "utf-8")
    extra = tmp_path / "extra.txt"
    extra.write_text("# extra phrases\nwedding ring\nholding hands\n", "utf-8")
    words = WORDS[:6] + ["wedding ring", "holding hands"]

    code = main(["neighbors", "a red heart", "--model", "random:tiny", "--device", "cpu",
                 "--only", str(only), "--phrases", str(extra), "-k", "5", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    with torch.no_grad():
        q = tiny_clip.encode_text(["a red heart"])[0]
    sims = (q / q.norm()) @ expected_embeddings(tiny_clip, words, vocab.DEFAULT_TEMPLATES).T
    order = sims.argsort(descending=True)[:5]
    assert [n["word"] for n in result["neighbors"]] == [words[i] for i in order]
    np.testing.assert_allclose([n["cosine"] for n in result["neighbors"]], sims[order].numpy(), atol=1e-4)

    # the table form prints the same words, one per line
    assert main(["neighbors", "a red heart", "--model", "random:tiny", "--only", str(only),
                 "--phrases", str(extra), "--top", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(None, 1)[1] for line in lines] == [words[i] for i in order]


def test_neighbors_command_errors_are_one_sentence(tmp_path, capsys):
    assert main(["neighbors", "   ", "--model", "random:tiny"]) != 0
    assert "prompt is empty" in capsys.readouterr().err
    assert main(["neighbors", "heart", "--model", "random:tiny", "--only", str(tmp_path / "nope.txt")]) != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
