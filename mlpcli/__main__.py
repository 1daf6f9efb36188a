"""`python -m mlpcli` and the `mlpcli` command.

The CLI's imports take a moment; a Ctrl-C during them exits 130 with one line, like a
Ctrl-C at any later point, not with a traceback of the import machinery.
"""

import sys


def run() -> None:
    try:
        from mlpcli.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
