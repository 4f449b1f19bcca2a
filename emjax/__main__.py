"""``python -m emjax``: the same program as the ``emjax`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
