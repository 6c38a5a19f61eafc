"""A CLIP-conditioned conditional VAE: a generator trained through CLIP's text space.

Images with binary attributes (CelebA, or the toy world's CelebA-format fixture) become
sentences ("a smiling woman wearing eyeglasses"); CLIP embeds the sentences; a
convolutional CVAE learns p(x | z, c) with c the embedding. A new sentence then
generates matching images, and the decoder is one more parameterization the ascent
engine can optimise (``--param cvae``). See docs/cvae.md.

    phrases.py       attribute -> phrase table, sentence builder
    data.py          CelebA and CSV layouts, image decoding and caching, splits
    conditioning.py  cached CLIP text embeddings, condition vectors
    model.py         the CVAE;  train.py  training;  checkpoint.py  checkpoint files
    sample.py        sampling grids;  param.py  the ``cvae`` parameterization
    evaluate.py      reconstruction, KL, CLIP agreement, attribute accuracy
    classifier.py    the attribute classifier;  fixture.py  the toy CelebA-format dataset
"""

_EXPORTS = {
    "train": "train", "TrainConfig": "train", "load_cvae": "checkpoint", "sample_images": "sample",
    "sample_grid": "sample", "evaluate": "evaluate", "make_fixture": "fixture",
    "SentenceBuilder": "phrases", "read_table": "data", "train_classifier": "classifier",
}


def __getattr__(name):
    # torch loads only when something that needs it is asked for
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'clipxai.generators.cvae' has no attribute {name!r}")


__all__ = list(_EXPORTS)
