"""``python -m archdsl`` is the ``archdsl`` command."""

import sys

from .cli import main

sys.exit(main())
