"""`python -m covidxray ...` (and `torchrun -m covidxray train ...`) runs the CLI."""

import sys

from covidxray.cli import main

sys.exit(main())
