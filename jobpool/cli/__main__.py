"""`python -m jobpool.cli`: the `jobpool` command."""

import sys

from jobpool.cli import main

sys.exit(main())
