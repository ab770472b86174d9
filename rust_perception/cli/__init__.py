"""Command-line entry points; `trainer/*.py` and the console scripts call these `main`s.

User errors (bad arguments, configs, datasets) end with one line on stderr and exit code 2;
Ctrl-C ends with exit code 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import UserError

# what the `train` extra (requirements-train.txt) brings beside the torch-free runtime
TRAIN_EXTRA = frozenset({"torch", "torchmetrics", "tensorboard", "matplotlib", "pycolmap", "onnx", "onnxscript"})


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
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in TRAIN_EXTRA:
            raise
        print(f"{prog or 'rust_perception'}: error: {missing} is not installed; this command needs the `train` "
              "extra: pip install -e '.[train]' -c constraints/<target>.txt in the checkout (docs/install.md)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog or 'rust_perception'}: interrupted", file=sys.stderr)
        return 130
