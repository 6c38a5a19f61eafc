"""``python -m clipxai.cli``: the same command line as ``clipxai``."""

import sys

from clipxai.cli.commands import main

sys.exit(main())
