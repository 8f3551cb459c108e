"""The ``editrl`` command: one sub-command per workflow, each defined in ``editrl.commands.<module>``.

Every command module exposes ``register(subparsers)``, which adds its sub-parser(s) (with an
``epilog`` of examples) and sets ``func`` (called with the parsed arguments, returns an exit code).
This file only wires them up, gives every parser the same help layout (defaults shown, examples kept
as written) and the ``-v``/``-q`` flags, and turns an ``EditRLError`` into one clear line on stderr.

Parsing must stay fast (``--help`` well under a second): command modules import torch, diffusers
and friends inside ``run``, never at import or ``register`` time, and the config classes a parser
reads (``editrl.rl.config``, ``editrl.reward.serve_config``) import none of them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import __version__, commands
from .errors import EditRLError, did_you_mean

CHATTY_LOGGERS = ("accelerate.checkpointing",)
"""Libraries' loggers whose INFO lines are per-file chatter (accelerate logs every file of every checkpoint it
saves: a dozen lines per tiny reward training run); shown only with -v."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and example epilogs as written; every option's default shown.

    A help text that already says what its default is (it contains "default") is left alone, so
    defaults like "the editor's" keep their words; store-true flags and required options show none.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is argparse.SUPPRESS or action.required:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction, argparse._VersionAction)) or not action.option_strings:
            return text
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


def add_verbosity_flags(parser: argparse.ArgumentParser, default=False) -> None:
    """-v/--verbose and -q/--quiet. Sub-commands get them with ``default=SUPPRESS`` so that a flag given
    before the sub-command is not reset by the sub-parser's default."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="log at DEBUG level")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="log warnings and errors only (no INFO lines)")


class _Subcommands(argparse._SubParsersAction):
    """Sub-parsers with the shared formatter and verbosity flags."""

    def add_parser(self, name, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        parser = super().add_parser(name, **kwargs)
        add_verbosity_flags(parser, default=argparse.SUPPRESS)
        return parser


def _command_parser(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost sub-parser the command line chose (``editrl reward score`` -> the ``score`` parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(namespace, action.dest, None) in action.choices:
            return _command_parser(action.choices[getattr(namespace, action.dest)], namespace)
    return parser


def unrecognized(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """``unrecognized argument --nn (did you mean --n?)``: the first unknown flag (else the first extra word)
    and the closest of the flags ``parser`` shows in its help."""
    word = next((extra.split("=", 1)[0] for extra in extras if extra.startswith("-")), extras[0])
    flags = [flag for action in parser._actions if action.help is not argparse.SUPPRESS for flag in action.option_strings]
    return f"unrecognized argument {word}{did_you_mean(word, flags, show=str) if word.startswith('-') else ''}"


class EditRLParser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-parsers share the help layout, and whose unknown flags are reported by the
    sub-command they were given to, with the closest known flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = _command_parser(self, namespace)  # one line, as every other error (no usage block above it)
            parser.exit(2, f"{parser.prog}: error: {unrecognized(extras, parser)}\n")
        return namespace


EPILOG = """examples:
  editrl best-of-n --n 8                      # best-of-8 on a built-in world example, shipped models
  editrl demo                                 # the Gradio page at http://127.0.0.1:7860
  editrl reward eval --bench bench/ --format editreward-bench
  editrl COMMAND --help                       # every option of one command, with its default"""


def build_parser() -> argparse.ArgumentParser:
    parser = EditRLParser(
        prog="editrl",
        description="Reward-guided improvement of instruction-based image editors. "
        "With no model arguments every command uses the world's shipped tiny models.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"editrl {__version__}")
    add_verbosity_flags(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EditRLError as err:
        print(f"{_command_parser(parser, args).prog}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
