"""`python -m jobpool`: the `jobpool` command."""

import sys

from jobpool.cli import main

sys.exit(main())
