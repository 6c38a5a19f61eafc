"""Old home of the ascent loop, kept for one release: import from ``clipxai.ascent.engine`` instead."""

from clipxai.ascent.engine import Callback, Engine  # noqa: F401
