"""Each backend's own tokenizer behind one small interface.

A tokenizer turns texts into a (N, context) tensor of ids padded to the model's context,
says how many leading positions of each row matter (through the end-of-text token, for the
causal text towers whose padding can be cut), and lists its whole-word tokens: the
vocabulary that labels and neighbours rank.
"""

from __future__ import annotations

import gzip
import warnings
from functools import lru_cache

import numpy as np
import torch


def _import_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import clip  # noqa: PLC0415  (imports pkg_resources, which warns)
    return clip


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    _import_clip()
    from clip.simple_tokenizer import bytes_to_unicode  # noqa: PLC0415
    return {ch: b for b, ch in bytes_to_unicode().items()}


def whole_words(tokens) -> list[str]:
    """Alphabetic whole words (2+ characters) among a vocabulary's token strings, sorted.

    Byte-level BPE marks a word's last piece with ``</w>`` (CLIP) or its first with ``Ġ``
    (GPT-2 style); SentencePiece marks a word's first piece with ``▁``.
    """
    byte_of = _byte_decoder()
    words = set()
    for token in tokens:
        if token.endswith("</w>"):
            raw, byte_level = token[:-4], True
        elif token.startswith("Ġ"):
            raw, byte_level = token[1:], True
        elif token.startswith("▁"):
            raw, byte_level = token[1:], False
        else:
            continue
        if byte_level:
            try:
                raw = bytes(byte_of[c] for c in raw).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                continue  # a fragment of a multi-byte character, not a word
        if len(raw) >= 2 and raw.isalpha():
            words.add(raw)
    return sorted(words)


class ClipBPE:
    """OpenAI's CLIP tokenizer (clip-anytorch): pads with 0, end-of-text is the highest id."""

    name = "clip-bpe"

    def __call__(self, texts: list[str], context_length: int) -> torch.Tensor:
        """``clip.tokenize(texts, truncate=True)``, the same ids, about twice as fast for plain ASCII text.

        clip cleans every text with ftfy and html.unescape first; for ASCII text without '&'
        both change nothing, so such texts skip them (a vocabulary of 49k words is tokenized
        in seconds instead of tens of seconds).
        """
        clip = _import_clip()
        texts = list(texts)
        slow = [i for i, t in enumerate(texts) if not (t.isascii() and "&" not in t)]
        if len(slow) == len(texts):
            return clip.tokenize(texts, context_length=context_length, truncate=True)
        from clip.simple_tokenizer import whitespace_clean  # noqa: PLC0415
        tok = clip.clip._tokenizer
        enc, byte_encoder, bpe = tok.encoder, tok.byte_encoder, tok.bpe
        sot, eot = enc["<|startoftext|>"], enc["<|endoftext|>"]
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        pieces: dict[str, list[int]] = {}   # a template's words recur in every text
        skip = set(slow)
        for i, text in enumerate(texts):
            if i in skip:
                continue
            ids = [sot]
            for piece in tok.pat.findall(whitespace_clean(text).lower()):
                got = pieces.get(piece)
                if got is None:
                    merged = bpe("".join(byte_encoder[b] for b in piece.encode("utf-8")))
                    got = pieces[piece] = [enc[b] for b in merged.split(" ")]
                ids += got
            ids = ids[:context_length - 1]
            ids.append(eot)
            out[i, :len(ids)] = ids
        out = torch.from_numpy(out)
        if slow:
            out[slow] = clip.tokenize([texts[i] for i in slow], context_length=context_length, truncate=True)
        return out

    def lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.argmax(dim=-1) + 1

    def words(self) -> list[str]:
        return clip_words()


class OpenClipTokenizer:
    """open_clip's tokenizer for a model: its SimpleTokenizer (CLIP's BPE) or a wrapped HF one."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.simple = type(tokenizer).__name__ == "SimpleTokenizer"
        self.name = "clip-bpe" if self.simple else f"open_clip:{type(tokenizer).__name__}"

    def __call__(self, texts: list[str], context_length: int) -> torch.Tensor:
        return self.tok(list(texts), context_length=context_length).long()

    def lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.simple:
            return tokens.argmax(dim=-1) + 1
        return torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)

    def words(self) -> list[str]:
        if self.simple:
                return clip_words()
        inner = getattr(self.tok, "tokenizer", self.tok)
        return whole_words(inner.get_vocab())


class HFTokenizer:
    """A Hugging Face tokenizer; rows end at the first end-of-text token, as CLIPModel pools."""

    def __init__(self, tokenizer, eos_id: int | None):
        self.tok = tokenizer
        self.eos_id = eos_id
        self.name = f"transformers:{type(tokenizer).__name__}"

    def __call__(self, texts: list[str], context_length: int) -> torch.Tensor:
        out = self.tok(list(texts), padding="max_length", max_length=context_length, truncation=True,
                       return_tensors="pt")
        return out["input_ids"].long()

    def lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.eos_id is None:
            return torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)
        is_eos = tokens == self.eos_id
        first = is_eos.int().argmax(dim=-1)
        return torch.where(is_eos.any(dim=-1), first + 1, torch.full_like(first, tokens.shape[1]))

    def words(self) -> list[str]:
        return whole_words(self.tok.get_vocab())


@lru_cache(maxsize=1)
def clip_bpe_for_hf():
    """A transformers ``CLIPTokenizer`` built from OpenAI's BPE table (the one every CLIP uses).

    Building it takes a second or two; it is made once and shared (it keeps no per-call state).
    """

    _import_clip()
    from clip.simple_tokenizer import SimpleTokenizer, default_bpe  # noqa: PLC0415
    from transformers import CLIPTokenizer  # noqa: PLC0415

    simple = SimpleTokenizer(default_bpe())
    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    return CLIPTokenizer(vocab=dict(simple.encoder), merges=merges)


_WORDS: list[str] | None = None


def clip_words() -> list[str]:
    """The whole-word tokens of CLIP's BPE vocabulary: alphabetic, 2+ characters, sorted."""
    global _WORDS
    if _WORDS is None:
        _import_clip()
        from clip.simple_tokenizer import bytes_to_unicode, default_bpe  # noqa: PLC0415

        byte_of = {ch: b for b, ch in bytes_to_unicode().items()}
        lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
        # The same slice clip's SimpleTokenizer uses: the header line, then the merges
        # that fill the 49152-token table (256 bytes and 2 special tokens aside).
        merges = lines[1:49152 - 256 - 2 + 1]
        words = set()
        for merge in merges:
            token = "".join(merge.split())
            if not token.endswith("</w>"):
                continue
            try:
                word = bytes(byte_of[c] for c in token[:-4]).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                continue  # a fragment of a multi-byte character, not a word
            if len(word) >= 2 and word.isalpha():
                words.add(word)
        _WORDS = sorted(words)
    return list(_WORDS)
