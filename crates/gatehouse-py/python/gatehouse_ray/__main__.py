"""``python -m gatehouse_ray``: the Ray driver's command line."""

import sys

from .driver import main

if __name__ == "__main__":
    sys.exit(main())
