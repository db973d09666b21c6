"""``python tests/search_cli.py ARGS``: ``archdsl ARGS`` with the space read by
:func:`search_fakes.read_fake_space` (a JSON file), for tests that start worker processes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_fakes import read_fake_space  # noqa: E402

from archdsl import cli  # noqa: E402
from archdsl.search import driver  # noqa: E402

if __name__ == "__main__":
    driver.read_space = read_fake_space
    sys.exit(cli.main(sys.argv[1:]))
