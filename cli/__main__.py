"""``python -m uvd.cli ...`` is ``uvd ...``."""

from uvd.cli import entry

entry()
