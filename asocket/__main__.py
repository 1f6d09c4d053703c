"""``python -m asocket``: the command line (``asocket._cli``); the demo by default."""

import sys

from asocket._cli import main

if __name__ == "__main__":
    sys.exit(main())
