"""`python -m mlplab ...` is the `mlplab` command."""

import sys

from mlplab.cli import main

sys.exit(main())
