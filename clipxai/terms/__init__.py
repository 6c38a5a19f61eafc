"""Terms: what the ascent maximizes, as a weighted sum of named parts.

A term is a plain callable ``term(step) -> tensor`` returning one value per seed (shape
``(K,)``) or a scalar. ``Objective`` wraps terms so they compose with ``+``, ``-`` and
``*`` a number, keeps each term's name for logging, and reduces every side to per-seed
values before combining. Objectives are *maximized*; the engine negates once::

    cosine("❤️") - 0.5 * cosine("text") - 1e-5 * tv() - 0.01 * memory()

``base`` holds ``Step``, ``Objective`` and the registry; ``prompt``, ``image`` and ``features``
the built-in terms (imported here, so they are registered); ``load`` turns a name or a
``file.py:fn`` into a term.
"""

from clipxai.terms.base import Objective, Step, list_losses, list_terms, register_loss, register_term
from clipxai.terms.diversity import diversity
from clipxai.terms.features import channel, direction, head, neuron
from clipxai.terms.image import range_penalty, tv
from clipxai.terms.load import load_loss, load_term, parse_term_option
from clipxai.terms.palette import palette
from clipxai.terms.prompt import cosine, logexp_cosine, memory, spherical

__all__ = ["Objective", "Step", "list_terms", "register_term", "list_losses", "register_loss", "load_term",
           "load_loss", "parse_term_option", "cosine", "spherical", "logexp_cosine", "memory", "tv",
           "range_penalty", "neuron", "channel", "direction", "head", "palette", "diversity"]
