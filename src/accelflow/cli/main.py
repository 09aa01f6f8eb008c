"""Entry point of the `accelflow` command.

Each sub-command lives in its own module that defines ``register(subparsers)``; the modules are listed
explicitly in :data:`COMMAND_MODULES` (no directory scanning). Errors derived from
:class:`accelflow.errors.AccelflowError` become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from accelflow import __version__
from accelflow.errors import AccelflowError

#: Modules defining sub-commands, in the order shown by ``accelflow --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "accelflow.cli.inspect_cmd", "accelflow.cli.estimate_cmd",
    "accelflow.cli.run_cmd", "accelflow.cli.runs_cmd", "accelflow.cli.dataflow_cmd", "accelflow.cli.hass_cmd", "accelflow.cli.sweep_cmd",
    "accelflow.cli.flow_search_cmd", "accelflow.cli.cache_cmd",
)

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelflow", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"accelflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except AccelflowError as exc:
        print(f"accelflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"accelflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
