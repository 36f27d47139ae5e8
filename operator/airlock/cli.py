"""The ``airlock`` command: one table of subcommands, each a parser setup and a handler.

Kept thin on purpose: handlers parse flags, call the library and turn results into an exit code.
Exit codes are part of the interface (CI pipelines branch on them):

    0  nothing at or above --fail-on
    1  a finding at or above --fail-on (default: enforce)
    2  unusable input: unreadable or invalid manifest, invalid policy, bad flags
    3  internal error (a bug: please report it)

Every error Airlock raises on purpose is an :class:`~airlock.errors.AirlockError` and is printed
as one line, ``airlock: error: ...``, without a traceback. An unexpected exception prints its
type and where it was raised but never its message, which could quote manifest content.
"""

from __future__ import annotations

import argparse
import difflib
import os
import platform
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from airlock import __version__
from airlock.engine import evaluate
from airlock.errors import AirlockError, InputError
from airlock.findings import Action
from airlock.rules import RULE_INFO, explain
from airlock.scan import (
    describe_error,
    format_explain,
    format_json,
    format_rule_list,
    format_sarif,
    format_summary,
    format_text,
    load_paths,
    load_policy_file,
    paused_gc,
    run_scan,
)

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

_EPILOG = """exit codes:
  0  nothing at or above --fail-on
  1  a finding at or above --fail-on
  2  unusable input, invalid policy or bad flags
  3  internal error"""


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: ``configure`` adds its flags, ``run`` does the work and returns the exit
    code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------------------- scan


def _namespace_env(value: str) -> tuple[str, str]:
    ns, sep, env = value.partition("=")
    if not sep or not ns.strip() or not env.strip():
        raise argparse.ArgumentTypeError(f"expected NAMESPACE=ENVIRONMENT, got {value!r}")
    return ns.strip(), env.strip()


def _configure_scan(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="manifest file, directory (read recursively: *.yaml, *.yml, *.json) or - for stdin",
    )
    p.add_argument("--policy", metavar="FILE", help="BaselinePolicy YAML (default: built-in)")
    p.add_argument(
        "--environment",
        metavar="NAME",
        help="environment of objects whose namespace has no known environment",
    )
    p.add_argument(
        "--namespace-env",
        metavar="NS=ENV",
        action="append",
        type=_namespace_env,
        default=[],
        help="environment of a namespace (repeatable)",
    )
    p.add_argument(
        "-o", "--format", choices=("text", "json", "sarif"), default="text", help="report format"
    )
    p.add_argument(
        "--fail-on",
        choices=("enforce", "warn", "audit"),
        default="enforce",
        help="exit 1 when a finding has this action or a stronger one (default: enforce)",
    )
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--no-color", action="store_true", help="never colour the text report")
    p.add_argument(
        "--show-exempted", action="store_true", help="text report: list exempted findings too"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="text report: summary line only")


def _use_color(args: argparse.Namespace, stream: TextIO) -> bool:
    if args.no_color or args.output or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _run_scan(args: argparse.Namespace) -> int:
    # thousands of acyclic objects held at once: the cyclic collector would only rescan them
    # (3x slower on 5,000 manifests); reference counting frees what matters
    with paused_gc():
        return _scan(args)


def _scan(args: argparse.Namespace) -> int:
    policy = load_policy_file(args.policy) if args.policy else None
    loaded = load_paths(args.paths, stdin=sys.stdin)
    result = run_scan(
        loaded,
        evaluate,
        policy=policy,
        environment=args.environment,
        namespace_env=dict(args.namespace_env),
        fail_on=Action(args.fail_on),
    )
    if args.format == "json":
        report = format_json(result)
    elif args.format == "sarif":
        report = format_sarif(result, RULE_INFO)
    elif args.quiet:
        report = format_summary(result) + "\n"
    else:
        report = format_text(
            result, color=_use_color(args, sys.stdout), show_exempted=args.show_exempted
        )
    if args.output:
        try:
            Path(args.output).write_text(report, encoding="utf-8")
        except OSError as exc:
            what = exc.strerror or type(exc).__name__
            raise InputError(f"cannot write: {what}", args.output) from None
        print(format_summary(result), file=sys.stderr)
    else:
        sys.stdout.write(report)
    for err in result.errors:
        _error(describe_error(err))
    return result.exit_code


# ------------------------------------------------------------------------------------ explain


def _configure_explain(p: argparse.ArgumentParser) -> None:
    p.add_argument("rule", nargs="?", help="rule id, e.g. plaintext-secret-env")
    p.add_argument("--list", action="store_true", help="list every rule of the catalog")


def _run_explain(args: argparse.Namespace) -> int:
    if args.list or not args.rule:
        sys.stdout.write(format_rule_list(RULE_INFO.values()))
        return EXIT_OK
    try:
        info = explain(args.rule)
    except KeyError:
        close = difflib.get_close_matches(args.rule, list(RULE_INFO), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `airlock explain --list`"
        _error(f"unknown rule {args.rule!r}{hint}")
        return EXIT_USAGE
    sys.stdout.write(format_explain(info))
    return EXIT_OK


# ------------------------------------------------------------------------------------ version


def _version_text() -> str:
    return (
        f"airlock {__version__}\n"
        f"Python {platform.python_version()} ({platform.python_implementation()}) "
        f"on {platform.system()} {platform.machine()}\n"
    )


def _run_version(_args: argparse.Namespace) -> int:
    sys.stdout.write(_version_text())
    return EXIT_OK


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        sys.stdout.write(_version_text())
        parser.exit(EXIT_OK)


def _no_flags(_p: argparse.ArgumentParser) -> None:
    return None


# The one registry of subcommands (`airlock webhook` and `airlock controller` join it here).
COMMANDS: tuple[Command, ...] = (
    Command("scan", "check manifests against the baseline (CI)", _configure_scan, _run_scan),
    Command("explain", "describe a rule: what, why, how to fix", _configure_explain, _run_explain),
    Command("version", "print the version", _no_flags, _run_version),
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Airlock: a security baseline for AI workloads on Kubernetes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in commands:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.configure(p)
        p.set_defaults(handler=cmd.run)
    return parser


def _error(message: str) -> None:
    print(f"airlock: error: {message}", file=sys.stderr)


def _internal_error(exc: BaseException) -> None:
    # the type and the innermost frame locate the bug; the message might quote manifest content
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {Path(last.filename).name}:{last.lineno}"
    print(
        f"airlock: internal error: {type(exc).__name__}{where} (set AIRLOCK_DEBUG=1 for a "
        "traceback; please report it)",
        file=sys.stderr,
    )


def main(argv: Sequence[str] | None = None, *, commands: Sequence[Command] = COMMANDS) -> int:
    """Entry point of the console script; returns the exit code (see the module docstring)."""
    parser = build_parser(commands)
    try:
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        if exc.code is None:
            return EXIT_OK
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except AirlockError as exc:
        _error(describe_error(exc) if isinstance(exc, InputError) else str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `airlock scan … | head`: the reader left; silence the final flush of stdout
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FINDINGS
    except Exception as exc:  # the last line of defence: no traceback, exit 3
        if os.environ.get("AIRLOCK_DEBUG"):
            raise
        _internal_error(exc)
        return EXIT_INTERNAL
