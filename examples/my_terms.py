"""A user term: the image's colour saturation, added to the objective with --term.

    clipxai ascend "❤️" --model toy --term examples/my_terms.py:saturation=0.1
"""


def saturation(step):
    """Mean colour saturation of each seed's image (max minus min over the channels)."""
    img = step.image                      # [K,3,H,W] in [0,1]
    return (img.max(1).values - img.min(1).values).mean(dim=(1, 2))
