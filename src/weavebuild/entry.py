"""The `weave` console script. It imports the CLI inside an interrupt guard, so that a Ctrl-C
landing while Python is still importing it ends like any other interrupt (one line, exit 130)
rather than with a traceback from the middle of an import."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("weave: interrupted\n")
        sys.exit(130)
    cli_main()
