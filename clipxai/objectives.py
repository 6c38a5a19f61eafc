"""Old home of the terms, kept for one release: import from ``clipxai.terms`` instead."""

from clipxai.terms import *  # noqa: F401,F403
from clipxai.terms import __all__  # noqa: F401
