"""Command line: ``srnomogram <group> <command> ...``.

Subcommands only parse arguments and call the Python API. Each area owns its commands in a
``_cli.py`` module with ``register(subparsers)``; this file only assembles them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys

from . import __version__
from .errors import SrnomogramError

# Each module defines register(subparsers) and sets ``func`` on its parsers.
COMMAND_MODULES = (
    "srnomogram.data._cli",
    "srnomogram.sr._cli",
    "srnomogram.radiomics._cli",
    "srnomogram.deep._cli",
    "srnomogram.study._cli",
    "srnomogram.study._external_cli",
    "srnomogram.study._update_cli",
)


def command_group(subparsers, name: str, help: str, description: str | None = None, metavar: str = "COMMAND"):
    """Add a command group ``name``; return ``(group_parser, its_subparsers)``.

    Called without a subcommand, the group prints its help and exits with status 2.
    """
    group = subparsers.add_parser(name, help=help, description=description)
    group.set_defaults(func=lambda args: group.print_help() or 2)
    return group, group.add_subparsers(dest=f"{name}_command", metavar=metavar)


def _count(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return int(value)


def threads_arg(p) -> None:
    """``--threads N`` on a command that computes (see :mod:`srnomogram._threads`)."""
    p.add_argument("--threads", type=_count, default=None, metavar="N",
                   help="CPU threads for PyTorch, OpenMP/BLAS and local workers together (default: study.threads, "
                        "else $SRNOMOGRAM_THREADS, else $OMP_NUM_THREADS, else the cores this process may use)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srnomogram",
        description="Super-resolution ultrasound radiomics, deep learning and a validated nomogram (Yang & Ma).",
    )
    parser.add_argument("--version", action="version", version=f"srnomogram {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a stage not built yet
            if exc.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    from ._threads import prefer_passive_wait, set_threads

    # Before anything loads torch (building the parser may): OpenMP reads its wait policy once, when it loads.
    prefer_passive_wait()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # PyRadiomics configures its own logger on import; keep it quiet unless asked.
    logging.getLogger("radiomics").setLevel(logging.DEBUG if args.verbose else logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if "threads" in args:  # the commands that compute; a study's own study.threads is applied by run_study
            set_threads(args.threads)
        rc = args.func(args)
    except SrnomogramError as exc:
        print(f"srnomogram: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srnomogram: interrupted; finished steps are kept, rerun to continue.", file=sys.stderr)
        return 130
    except OSError as exc:  # the system refused: a full disk, a read-only folder, a name too long. Writes are atomic
        logging.getLogger(__name__).debug("traceback", exc_info=True)  # -v shows where
        print(f"srnomogram: error: {os_error_line(exc)}", file=sys.stderr)
        return 1  # the status an uncaught exception had: "the system refused", apart from bad input (2)
    return int(rc or 0)


#: What to do, by errno, after :func:`os_error_line`'s reason.
_OS_REMEDIES = {
    errno.ENOSPC: "free some space (or choose another output folder) and rerun; finished steps are kept",
    errno.EDQUOT: "free some space (or choose another output folder) and rerun; finished steps are kept",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.EACCES: "check its permissions, or choose a folder you can write in",
    errno.EPERM: "check its permissions, or choose a folder you can write in",
    errno.EROFS: "choose an output folder on a writable file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
}


def os_error_line(exc: OSError) -> str:
    """One line for an :class:`OSError`: the file(s) it names, the system's reason, and what to do.

    >>> import errno
    >>> os_error_line(OSError(errno.ENOSPC, "No space left on device", "out/tables/table2.csv"))
    'out/tables/table2.csv: No space left on device; free some space (or choose another output folder) and rerun; finished steps are kept.'
    """
    names = [n if isinstance(n, str) else os.fsdecode(n) if isinstance(n, bytes) else str(n)
             for n in (exc.filename, exc.filename2) if n is not None]
    where = " -> ".join(n if n.isprintable() else repr(n) for n in names)
    reason = exc.strerror or str(exc) or type(exc).__name__
    remedy = _OS_REMEDIES.get(exc.errno)
    return f"{where + ': ' if where else ''}{reason}{'; ' + remedy if remedy else ''}."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
