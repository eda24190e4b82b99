"""``python -m nghttp2``: the command-line server (see ``--help``)."""

import sys

from nghttp2.server.__main__ import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m nghttp2"))
