"""`python -m pixelcheck` is the `pixelcheck` command."""

import sys

from pixelcheck.cli import main

sys.exit(main())
