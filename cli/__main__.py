"""``python -m uvd.cli ...`` is ``uvd ...``."""

import sys

from uvd.cli import main

sys.exit(main())
