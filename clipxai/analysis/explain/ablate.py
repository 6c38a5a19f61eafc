"""Component ablation for the analysis: ``ablated`` and ``component_means`` from ``clipxai.models.ablate``.

The context lives with the models so that the ascent can run ablated (``clipxai ascend --ablate``)
without importing the analysis; this module keeps the analysis' import path working.
"""

from clipxai.models.ablate import MODES, ablated, component_means

__all__ = ["MODES", "ablated", "component_means"]
