"""`python -m pruning_spec`: the `pruning-spec` command."""

import sys

from pruning_spec._cli import main

sys.exit(main())
