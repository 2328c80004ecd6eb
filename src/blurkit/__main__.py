"""``python -m blurkit``: the ``blurkit`` command line (the same as the ``blurkit`` console script)."""

import sys

from blurkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
