"""Command-line entry points; `trainer/*.py` and the console scripts call these `main`s.

User errors (bad arguments, configs, datasets) end with one line on stderr and exit code 2;
Ctrl-C ends with exit code 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (it names the argument and, for
    choices, the allowed values) instead of usage + error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None, prog: str = "") -> int:
    try:
        return int(main(argv) or 0)
    except UserError as exc:
        print(f"{prog or 'rust_perception'}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog or 'rust_perception'}: interrupted", file=sys.stderr)
        return 130
