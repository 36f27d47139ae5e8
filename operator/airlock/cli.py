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

import gc

# What the imports below build (some 10,000 objects the collector tracks: modules, classes,
# functions, tables) lives as long as the process. Cyclic collections while it is built would
# only walk it again, and so would every later one: it is built with the collector paused,
# then set aside (gc.freeze), which saves a few milliseconds of every command's start-up. (What
# is frozen is never collected: the few hundred cycles the imports leave behind stay, once.)
_COLLECTING = gc.isenabled()
gc.disable()
try:
    import argparse
    import contextlib
    import os
    import sys
    from collections.abc import Callable, Sequence
    from typing import NoReturn, TextIO

    from airlock import __version__, compilecache
    from airlock.detectors import FingerprintKey
    from airlock.engine import evaluate
    from airlock.errors import AirlockError, InputError
    from airlock.findings import Action
    from airlock.records import record
    from airlock.rules import RULE_INFO, explain
    from airlock.scan import (
        describe_error,
        entry_report,
        format_explain,
        format_json,
        format_rule_list,
        format_summary,
        format_text,
        list_inputs,
        load_policy_file,
        paused_gc,
        scan_inputs,
    )
    from airlock.scan.parallel import default_jobs
finally:
    gc.freeze()
    if _COLLECTING:
        gc.enable()

__all__ = ["COMMANDS", "Command", "build_parser", "console", "main"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

_EPILOG = """exit codes:
  0  nothing at or above --fail-on
  1  a finding at or above --fail-on
  2  unusable input, invalid policy or bad flags
  3  internal error"""


@record(frozen=True)
class Command:
    """A subcommand: ``configure`` adds its flags, ``run`` does the work and returns the exit
    code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    heavy: bool = False  # configuring imports kopf and the Kubernetes client (~0.6 s)


# --------------------------------------------------------------------------------------- scan


def _namespace_env(value: str) -> tuple[str, str]:
    ns, sep, env = value.partition("=")
    if not sep or not ns.strip() or not env.strip():
        raise argparse.ArgumentTypeError(f"expected NAMESPACE=ENVIRONMENT, got {value!r}")
    return ns.strip(), env.strip()


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes (0 = auto), got {value!r}"
        )
    return n


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
    p.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=_jobs,
        default=0,
        help="judge files in N processes (default 0: one per CPU this process may use; 1: "
        "serial). Inputs under 256 KB are always judged serially; the report is the same",
    )
    p.add_argument(
        "--fingerprint-key-file",
        metavar="FILE",
        help="key the fingerprints of detected credentials with the key in FILE (at least 16 "
        "bytes; the cluster's key gives the same fingerprints as its findings). Without it "
        "fingerprints are an unkeyed hash, which confirms a guessed weak password",
    )


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
    key = FingerprintKey.read(args.fingerprint_key_file) if args.fingerprint_key_file else None
    result = scan_inputs(
        list_inputs(args.paths, stdin=sys.stdin),
        evaluate,
        policy=policy,
        environment=args.environment,
        namespace_env=dict(args.namespace_env),
        fail_on=Action(args.fail_on),
        fingerprint_key=key,
        jobs=args.jobs or default_jobs(),
        render=entry_report if args.format == "json" else None,  # encoded where judged
    )
    if args.format == "json":
        report = format_json(result)
    elif args.format == "sarif":
        from airlock.scan.sarif import format_sarif

        report = format_sarif(result, RULE_INFO)
    elif args.quiet:
        report = format_summary(result) + "\n"
    else:
        report = format_text(
            result, color=_use_color(args, sys.stdout), show_exempted=args.show_exempted
        )
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as out:
                out.write(report)
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
        import difflib  # only for a mistyped rule id: kept off every command's start-up

        close = difflib.get_close_matches(args.rule, list(RULE_INFO), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `airlock explain --list`"
        _error(f"unknown rule {args.rule!r}{hint}")
        return EXIT_USAGE
    sys.stdout.write(format_explain(info))
    return EXIT_OK


# ------------------------------------------------------------------------------------ version


def _version_text() -> str:
    import platform  # only `airlock version` needs it (start-up time)

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


# ------------------------------------------------------------------ webhook, controller, ops
# The long-running commands import kopf, aiohttp and the Kubernetes client lazily, so that
# `airlock scan` in CI starts fast and needs none of them at import time.


def _configure_webhook(p: argparse.ArgumentParser) -> None:
    from airlock.webhook_process import add_arguments

    add_arguments(p)


def _logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level != "DEBUG":
        # kopf logs every handler call at INFO and aiohttp every request: one line per event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _run_webhook(args: argparse.Namespace) -> int:
    import asyncio

    from airlock.webhook_process import serve_webhook, settings_from_args

    settings = settings_from_args(args)
    _logging(args.log_level)
    try:
        asyncio.run(serve_webhook(settings, kubeconfig=args.kubeconfig))
    except OSError as exc:  # the port is taken, the certificate unreadable, …
        raise AirlockError(f"webhook cannot serve: {exc.strerror or exc}") from None
    return EXIT_OK


def _configure_controller(p: argparse.ArgumentParser) -> None:
    from airlock.controller.certs import add_cert_arguments
    from airlock.controller.settings import add_arguments

    p.description = (
        "Run the controller (one active replica through kopf peering): BaselinePolicy status, "
        "the PolicyException lifecycle, webhook certificates, the background audit, "
        "PolicyReports and environment isolation. Settings come from flags only (environment "
        "variables named after Services, such as AIRLOCK_CONTROLLER_METRICS_PORT, are what "
        "Kubernetes injects into pods and are never read)."
    )
    add_arguments(p)
    add_cert_arguments(p)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _run_controller(args: argparse.Namespace) -> int:
    from airlock.controller import plugins
    from airlock.controller.runner import run_controller
    from airlock.controller.settings import settings_from_args

    _logging(args.log_level)
    settings = settings_from_args(args)
    return run_controller(settings, plugins.from_args(args, settings))


def _configure_uninstall(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Delete Airlock's Validating- and MutatingWebhookConfigurations, so the API server stops "
        "calling the webhook whatever state it is in (the emergency "
        "runbook). Missing ones are fine."
    )
    p.add_argument(
        "--name",
        action="append",
        default=None,
        help="webhook configuration name (repeatable; default: airlock)",
    )
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))


def _run_uninstall(args: argparse.Namespace) -> int:
    from airlock.controller.certs import remove_webhook_configurations
    from airlock.controller.kube import api_client

    api = api_client(args.kubeconfig)
    try:
        deleted = remove_webhook_configurations(api, args.name or ["airlock"])
    finally:
        api.close()  # type: ignore[no-untyped-call]
    for item in deleted:
        print(f"deleted {item}")
    if not deleted:
        print("no Airlock webhook configuration was present")
    return EXIT_OK


def _configure_webhook_config(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Print the Validating- and MutatingWebhookConfigurations as YAML, pointing either at a "
        "Service (in-cluster) or at a URL with a caBundle (a webhook running outside the cluster)."
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="https://HOST:PORT of the webhook (paths are appended)")
    where.add_argument(
        "--service",
        metavar="NAMESPACE/NAME[:PORT]",
        help="the webhook's Service (port 443 by default)",
    )
    p.add_argument("--ca-file", help="PEM CA that signed the serving certificate")
    p.add_argument("--name", default="airlock", help="configuration name (airlock)")
    p.add_argument(
        "--airlock-namespace",
        default="airlock-system",
        help="Airlock's own namespace, always excluded (airlock-system)",
    )


def _run_webhook_config(args: argparse.Namespace) -> int:
    from airlock.admission.webhookconfig import render_webhook_configurations, to_yaml

    ca = b""
    if args.ca_file is not None:
        try:
            with open(args.ca_file, "rb") as fh:
                ca = fh.read()
        except OSError as exc:
            raise AirlockError(f"{args.ca_file}: {exc.strerror}") from None
    service = None
    if args.service:
        ns, _, rest = args.service.partition("/")
        name, _, port = rest.partition(":")
        if not ns or not name or (port and not port.isdigit()):
            raise AirlockError(f"--service {args.service!r}: expected NAMESPACE/NAME[:PORT]")
        service = (ns, name, int(port or 443))
    try:
        objs = render_webhook_configurations(
            name=args.name,
            service=service,
            url=args.url,
            ca_bundle=ca,
            airlock_namespace=args.airlock_namespace,
        )
    except ValueError as exc:
        raise AirlockError(str(exc)) from None
    sys.stdout.write(to_yaml(objs))
    return EXIT_OK


# The one registry of subcommands.
COMMANDS: tuple[Command, ...] = (
    Command("scan", "check manifests against the baseline (CI)", _configure_scan, _run_scan),
    Command("explain", "describe a rule: what, why, how to fix", _configure_explain, _run_explain),
    Command("version", "print the version", _no_flags, _run_version),
    Command(
        "webhook",
        "serve admission reviews over HTTPS",
        _configure_webhook,
        _run_webhook,
        heavy=True,
    ),
    Command(
        "controller",
        "run the controller: status, exceptions, certificates, audit",
        _configure_controller,
        _run_controller,
        heavy=True,
    ),
    Command(
        "webhook-config",
        "print the webhook configurations as YAML",
        _configure_webhook_config,
        _run_webhook_config,
    ),
    Command(
        "uninstall-webhooks",
        "delete Airlock's webhook configurations (the emergency runbook)",
        _configure_uninstall,
        _run_uninstall,
    ),
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, without importing ``shutil`` (and with it ``bz2`` and ``lzma``: 5 ms
    of every start-up) to learn the terminal's width: the parser builds a formatter for each
    argument it checks, help or not."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _columns() - 2)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` reads it: ``COLUMNS``, the terminal
    of standard output, or 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser(
    commands: Sequence[Command] = COMMANDS, argv: Sequence[str] | None = None
) -> argparse.ArgumentParser:
    """The parser; given ``argv``, heavy subcommands not named in it are left unconfigured, so
    `airlock scan` does not pay for importing kopf to build `airlock controller`'s flags, and
    when ``argv`` starts with a command, only that command's parser is built (each costs
    argparse's message lookups: 0.4 ms)."""
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Airlock: a security baseline for AI workloads on Kubernetes.",
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    first = argv[0] if argv else None
    if any(cmd.name == first for cmd in commands):
        commands = [cmd for cmd in commands if cmd.name == first]
    for cmd in commands:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog=_EPILOG,
            formatter_class=_Formatter,
        )
        if not cmd.heavy or argv is None or cmd.name in argv:
            cmd.configure(p)
        p.set_defaults(handler=cmd.run)
    return parser


def _error(message: str) -> None:
    print(f"airlock: error: {message}", file=sys.stderr)


def _internal_error(exc: BaseException) -> None:
    # the type and the innermost frame locate the bug; the message might quote manifest content
    import traceback  # only for an internal error (start-up time)

    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {os.path.basename(last.filename)}:{last.lineno}"
    print(
        f"airlock: internal error: {type(exc).__name__}{where} (set AIRLOCK_DEBUG=1 for a "
        "traceback; please report it)",
        file=sys.stderr,
    )


# Commands that do one thing and exit: the console script leaves them without tearing down the
# interpreter (a scan holds tens of thousands of small objects; freeing them one by one took a
# tenth of a scan of the AI samples). The long-running ones exit the normal way.
_ONE_SHOT = frozenset({"scan", "explain"})


def console() -> NoReturn:
    """The ``airlock`` console script: :func:`main`, then the exit."""
    code = main()
    if sys.argv[1:2] and sys.argv[1] in _ONE_SHOT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # the reader of a pipe left (see main): nothing more to say
            pass
        _save_compiled()
        os._exit(code)
    _save_compiled()
    sys.exit(code)


def _save_compiled() -> None:
    """What this run compiled afresh, kept for the next one (after the output: the report
    reaches its reader first); an interrupt there only loses the cache."""
    with contextlib.suppress(KeyboardInterrupt):
        compilecache.save()


def main(argv: Sequence[str] | None = None, *, commands: Sequence[Command] = COMMANDS) -> int:
    """Entry point of the console script; returns the exit code (see the module docstring)."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(commands, argv)
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
