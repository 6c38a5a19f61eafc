"""Is it really there? Trust checks for images a CLIP produced by ascent (computation only).

An image the optimised model alone sees as its prompt is an adversarial pattern, not a
concept (Geirhos et al. 2024, "Don't trust your eyes"). These modules ask the other
questions: do independent judges see it (``judges``), does it survive small harmless changes
(``perturb``), does it travel through the image tower the way natural images do
(``pathway``), is it the prompt's words written out (``written``), which few words make up
its embedding (``sparse``), CLIPScore and CMMD (``metrics``), and all of them per entry
with a one-sentence verdict (``evaluate``). Import from the submodules.
"""
