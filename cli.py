"""`python cli.py ...` is `clipxai ...` for a plain checkout."""
import sys

from clipxai.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
