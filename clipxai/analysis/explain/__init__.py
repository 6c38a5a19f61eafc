"""Which parts of CLIP's image tower make what a run shows: decomposition, ablation, per-state explanation.

Each module is imported on its own (this package imports none of them, so they never import
each other through it):

    from clipxai.analysis.explain.decompose import decompose     # embedding = sum of parts, exactly
    from clipxai.analysis.explain.ablate import ablated, component_means
    from clipxai.analysis.explain.states import explain, explain_states, ablation_test

Components have the same canonical names for every backend (``clipxai.models.components``):
``embed``, ``blocks.{i}``, ``blocks.{i}.attn``, ``blocks.{i}.attn.head{h}``, ``blocks.{i}.mlp``.
"""
