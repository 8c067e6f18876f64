"""``python -m deg_core.cli`` (and ``torchrun -m deg_core.cli``) runs the ``deg`` command."""

from __future__ import annotations

import sys

from deg_core.cli import main

if __name__ == "__main__":  # not on a mere import (e.g. by a tool that scans modules)
    sys.exit(main())
