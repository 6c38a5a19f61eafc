"""The local web viewer: ``clipxai view DIR`` serves the runs under DIR to a browser.

Pages (plain HTML, CSS and JavaScript in ``pages/`` and ``static/``, no build step) list the
runs, scrub one snapshot by snapshot, follow a live run, compare runs on one scrubber, and
start or stop a run. ``create_app`` builds the web application; ``cli`` binds and serves it.
"""

from clipxai.view.app import create_app

__all__ = ["create_app"]
