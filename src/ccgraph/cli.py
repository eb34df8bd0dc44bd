"""The ``ccgraph`` command line: a thin layer over the Python API.

Exit codes: 0 success, 2 a user error (one-line message; the traceback only with ``-v``),
1 an unexpected internal error, 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM).
Both signals unwind the command as an exception, so a half-written output is removed and a
previous output is left as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from ccgraph import __version__
from ccgraph.exceptions import CcgraphError, ConfigError, ConvergenceWarning, DataQualityWarning

__all__ = ["build_parser", "main"]

log = logging.getLogger("ccgraph")

# Subpackages that contribute their own commands through ``add_commands(subparsers)``.
#: Subcommand name -> the module whose ``add_commands`` adds it. Only the module of the command
#: being run is imported (``ccgraph run`` pays for none of them); help imports them all.
_COMMAND_MODULES = {
    "evaluate": "ccgraph.evaluate.cli",
    "report": "ccgraph.report.cli",
    "experiment": "ccgraph.experiment.cli",
    "estimate": "ccgraph.estimate",
    "update": "ccgraph.update.cli",
    "query": "ccgraph.query.cli",
}


def _cmd_run(args: argparse.Namespace) -> int:
    from ccgraph.config import load_config
    from ccgraph.pipeline import run

    cfg = load_config(args.config, args.set)
    start = time.perf_counter()
    result = run(cfg, out=args.out, resume=args.resume, show_progress=not args.quiet)
    counts = result.manifest.get("counts", {})
    total = time.perf_counter() - start
    msg = (
        f"wrote {result.path}: {counts.get('items', 0)} items, {counts.get('rejects', 0)} rejects, "
        f"{counts.get('clusters', 0)} clusters, {counts.get('inferred_tags', 0)} inferred tags "
        f"({counts.get('untagged_items_with_inferred_tags', 0)} untagged items tagged) in "
        f"{total:.1f} s"
    )
    sys.stdout.write(msg + "\n")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ccgraph.config import check_previous_run, load_config

    cfg = load_config(args.config, args.set)
    paths = cfg.data.path if isinstance(cfg.data.path, list) else [cfg.data.path]
    import glob as _glob

    if cfg.evaluate.dataset is not None:
        # `ccgraph evaluate` reads a named data set from `data.path` or, failing that, from
        # the shared copy ($CCGRAPH_DATA_DIR); validate must accept what evaluate accepts
        from ccgraph.evaluate.datasets import dataset_path

        folder = "flickr8k-1000" if cfg.evaluate.dataset == "flickr8k" else "citation-graphs"
        try:
            paths = [str(dataset_path(cfg.resolve(paths[0]), folder))]
        except CcgraphError as exc:
            raise CcgraphError(f"{args.config}: {exc}") from exc
    for p in paths:
        resolved = cfg.resolve(p)
        assert resolved is not None
        if not resolved.exists() and not _glob.glob(str(resolved)):
            raise CcgraphError(
                f"{args.config}: `data.path` {p!r} resolves to {resolved}, which does not exist"
            )
    inputs = {
        "data.image_root": cfg.data.image_root,
        "embed.precomputed.path": cfg.embed.precomputed.path,
        "embed.precomputed.ids_path": cfg.embed.precomputed.ids_path,
        "cluster.previous_run": cfg.cluster.previous_run,
    }
    for key, value in inputs.items():
        resolved = cfg.resolve(value)
        if resolved is not None and not resolved.exists():
            raise CcgraphError(
                f"{args.config}: `{key}` {value!r} resolves to {resolved}, which does not exist"
            )
    check_previous_run(cfg)
    if cfg.execution.engine == "spark":  # what run_spark refuses before its session
        from ccgraph.spark.config_checks import check_spark_config

        try:
            check_spark_config(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{args.config}: {exc}") from exc
    sys.stdout.write(f"{args.config}: valid (data: {', '.join(map(str, paths))})\n")
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is installed.

    With ``command`` (the subcommand about to run), the modules of the other subcommands are
    not imported; ``run`` and ``validate`` then import none.
    """
    parser = argparse.ArgumentParser(
        prog="ccgraph",
        description="Similarity graphs over openly licensed image catalogs: clusters, inferred "
        "tags and popularity.",
    )
    parser.add_argument("--version", action="version", version=f"ccgraph {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging; -v also shows tracebacks"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run the pipeline described by a YAML config")
    p.add_argument("config", type=Path, help="the YAML config file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set graph.k=30 (repeatable)",
    )
    p.add_argument("--out", type=Path, default=None, help="run directory (wins over output.dir)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="resume an interrupted run: say what is restored and warn when nothing matches "
        "(cached embeddings and graph checkpoints are reused whenever their inputs match)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a config without running it")
    p.add_argument("config", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_validate)

    if command in ("run", "validate"):
        wanted: list[str] = []
    elif command in _COMMAND_MODULES:
        wanted = [_COMMAND_MODULES[command]]
    else:
        wanted = list(_COMMAND_MODULES.values())
    for name in wanted:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name and exc.name.startswith("ccgraph"):
                continue
            raise
        module.add_commands(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler: logging.Handler
    try:
        from rich.console import Console
        from rich.logging import RichHandler

        # stderr: stdout carries the answers (`ccgraph query --json | jq`), never log lines
        handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    except ImportError:  # pragma: no cover
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("ccgraph")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Show ccgraph's own warnings as log lines, not as Python source locations."""
    if issubclass(category, (DataQualityWarning, ConvergenceWarning)):
        log.warning("%s", message)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)  # type: ignore[arg-type]


_default_showwarning = warnings.showwarning


#: Commands whose ``--out`` directory is replaced as a whole (anything inside it goes).
REPLACES_OUT_DIR = frozenset({"run", "update", "report"})


def refuse_output_over_input(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` that would overwrite one of the command's inputs.

    That is an ``--out`` equal to an input path or, for a command that replaces its output
    folder (:data:`REPLACES_OUT_DIR`), a folder that holds one; for the other commands also an
    ``--out`` inside any ccgraph run directory (it could replace the run's own files).

    Raises
    ------
    OutputError
        Naming ``--out``, the input argument (or run directory) and its path.
    """
    from ccgraph.exceptions import OutputError
    from ccgraph.io.atomic import is_run_directory

    out = getattr(args, "out", None)
    if not isinstance(out, Path):
        return
    target = out.expanduser().resolve()
    replaces = getattr(args, "command", None) in REPLACES_OUT_DIR
    # run / update / report check their own folders; evaluate's files (metrics.json, ...) are
    # read by the report from RUN/evaluation, and no run file has their names
    if not replaces and getattr(args, "command", None) != "evaluate":
        run = next((p for p in (target, *target.parents) if is_run_directory(p)), None)
        if run is not None:
            raise OutputError(
                f"--out {out} is inside the run directory {run}: writing there could "
                "overwrite the run's files; choose an output path outside the run"
            )
    for name, value in vars(args).items():
        if name == "out" or not isinstance(value, Path):
            continue
        src = value.expanduser().resolve()
        if src == target or (replaces and target in src.parents):
            where = "is" if src == target else "holds"
            raise OutputError(
                f"--out {out} {where} the input `{name.replace('_', '-')}` ({value}): writing "
                "there would overwrite it; choose another output path"
            )


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that every cleanup runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the command runs (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ccgraph`` command; returns the exit code."""
    # from the first line: a signal while the command modules are still imported is one
    # line too, not an import traceback (or, for SIGTERM, a silent kill)
    from ccgraph._hard_stop import enabled

    try:  # the process is the command's: long C calls end at once on a signal (_hard_stop)
        with enabled(), _terminate_as_exception():
            return _main(argv)
    except Terminated:
        sys.stderr.write("ccgraph: terminated (SIGTERM)\n")
        return 143
    except KeyboardInterrupt:
        sys.stderr.write("ccgraph: interrupted\n")
        return 130


def _main(argv: Sequence[str] | None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    command = next((t for t in tokens if not t.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(tokens)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(max(args.verbose, 1 if args.command in ("run", "update") else 0))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            refuse_output_over_input(args)
            code = int(args.func(args))
            sys.stdout.flush()  # a closed pipe is reported here, not at interpreter exit
            return code
    except BrokenPipeError:
        # the reader went away (`ccgraph query ... --json | head`): stop quietly, as a shell
        # tool does; stdout goes to /dev/null so that the exit flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except CcgraphError as exc:
        if args.verbose:
            log.exception("failed")
        first, *rest = str(exc).splitlines() or [type(exc).__name__]
        sys.stderr.write(f"ccgraph: error: {first}\n")
        for line in rest:
            sys.stderr.write(f"  {line}\n")
        return 2
    except OSError as exc:
        from ccgraph.io._output_errors import OUT_OF_SPACE  # here: `import ccgraph.io` is heavy

        # a full disk or an impossible name is the user's environment, not a bug
        if exc.errno is None or exc.errno not in OUT_OF_SPACE | {errno.ENAMETOOLONG}:
            raise
        # a full disk or a too-long name met where no ccgraph check caught it: still one line
        if args.verbose:
            log.exception("failed")
        where = f" ({exc.filename})" if exc.filename else ""
        sys.stderr.write(
            f"ccgraph: error: {os.strerror(exc.errno)}{where}; free some disk space or choose "
            "another (shorter) output path\n"
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
