"""Errors that reach a person: what went wrong, where, and how to fix it.

Every failure caused by input (a config file, a cfg, a weights file, an image, a broker
address) is raised as an InputError so the command line can print it in one piece and
exit non-zero instead of dumping a traceback.
"""
from __future__ import annotations

from typing import Optional


class InputError(Exception):
    """Bad input from the user. `where` is a file:line, a file, or a config key path."""

    def __init__(self, what: str, where: Optional[str] = None, fix: Optional[str] = None):
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


def did_you_mean(word: str, choices) -> str:
    """A ' (did you mean X?)' suffix, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def run_command(parser, argv=None) -> int:
    """Parse, run the chosen sub-command, and turn an InputError into one message + exit 2.
    Output piped into a reader that stops early (`| head`) ends the command quietly, exit 1."""
    import os
    import sys

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # nobody reads the rest: point stdout at /dev/null so the final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
