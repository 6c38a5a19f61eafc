"""Every ``clipxai`` command: click lives here and nowhere else in the package."""

from clipxai.cli.commands import main

__all__ = ["main"]
