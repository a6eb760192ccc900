"""The run configuration: option defaults for each command, kept in a file.

TLC users keep a ``.cfg`` beside the specification and Apalache takes ``--config``; an
xbdspec run is configured the same way, from the first of:

1. ``--config FILE`` on the command line (anywhere in it; a file named
   ``pyproject.toml`` is read from its ``[tool.xbdspec]`` table, any other file from its
   top level);
2. ``xbdspec.toml`` in the current directory (top level);
3. ``pyproject.toml`` in the current directory, its ``[tool.xbdspec]`` table (absent:
   no configuration).

The file holds one table per command, keyed by that command's long options (without the
dashes; ``max-states`` and ``max_states`` are the same key), and a ``sizes`` table, the
model's constants, shared by the commands that take size options (``explore``)::

    [tool.xbdspec.sizes]            # the model's constants (TLC's CONSTANTS)
    commands = 3
    grants = 3

    [tool.xbdspec.explore]
    engine = "python"
    invariants = ["FreezeAccounting", "NoLostIO"]   # TLC's INVARIANT (default: all)
    properties = ["ResponsesReachTheirBio"]         # step and progress properties
    max-states = 500000

    [tool.xbdspec.difftest]         # campaign options
    impl = "tutorial"
    examples = 500
    seed = 7

A value is checked as the option's own command-line value is (its type, its choices);
an option given on the command line overrides the file's value (a repeatable option's
values from the command line replace the file's list).  A key that names no option, a
table that names no command, or a value of the wrong type is an input error: the
message names the file, the table and the key, and the command exits 2.

:func:`split_option` takes ``--config`` out of the arguments and :func:`apply` sets the
subcommand parser's defaults (``parser.set_defaults``), so the commands' own modules
need not know about the file.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xbdspec.errors import XbdspecError

#: The file read when no ``--config`` is given, before ``pyproject.toml``.
FILE_NAME = "xbdspec.toml"
#: The table of ``pyproject.toml`` that holds the configuration.
PYPROJECT_TABLE = ("tool", "xbdspec")
#: The shared table of the model's sizes (the explorer's size options).
SIZES = "sizes"


class ConfigError(XbdspecError):
    """The run configuration cannot be used (unreadable, or a key or value that no
    command option takes)."""


@dataclass(frozen=True)
class Config:
    """A loaded run configuration.

    Attributes:
        source: the file it was read from (for messages).
        prefix: how its tables are named in that file (``tool.xbdspec.`` in
            ``pyproject.toml``, empty at a file's top level).
        tables: the configuration's tables by name (commands and ``sizes``).
    """

    source: Path
    prefix: str
    tables: Mapping[str, Any]

    def where(self, table: str, key: str | None = None) -> str:
        """``FILE: [table] key``: where a value is, for a message."""
        place = f"{self.source}: [{self.prefix}{table}]"
        return place if key is None else f"{place} {key}"


class _ConfigList(list[Any]):
    """A repeatable option's values from the file.  ``argparse`` copies the default list
    before appending the first value given on the command line; this copy is empty, so
    the command line's values replace the file's instead of adding to them."""

    def __copy__(self) -> list[Any]:
        return []


def split_option(argv: Sequence[str]) -> tuple[list[str], Path | None]:
    """``argv`` without ``--config FILE`` (or ``--config=FILE``), and ``FILE``.

    It may stand anywhere before a ``--``, before or after the command's name; given
    twice, the last one counts."""
    rest: list[str] = []
    chosen: Path | None = None
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--":
            rest += items[i:]
            break
        if item == "--config":
            if i + 1 >= len(items):  # left for argparse to refuse: it expects a FILE
                rest.append(item)
                break
            chosen = Path(items[i + 1])
            i += 2
            continue
        if item.startswith("--config="):
            chosen = Path(item.split("=", 1)[1])
            i += 1
            continue
        rest.append(item)
        i += 1
    return rest, chosen


def find(explicit: Path | None = None, cwd: Path | None = None) -> Config | None:
    """The run configuration in force: ``explicit``, else ``xbdspec.toml``, else the
    ``[tool.xbdspec]`` table of ``pyproject.toml`` in ``cwd``; None when there is none."""
    if explicit is not None:
        if not explicit.exists():
            raise ConfigError(f"--config {explicit}: no such file")
        return load(explicit)
    here = cwd or Path.cwd()
    own = here / FILE_NAME
    if own.is_file():
        return load(own)
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        config = load(pyproject)
        return config if config.tables else None
    return None


def load(path: Path) -> Config:
    """Read ``path`` (TOML) and check its tables' names (the keys of a command's table
    are checked when that command runs, against its parser: :func:`defaults`)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    prefix = ""
    if path.name == "pyproject.toml":
        prefix = ".".join(PYPROJECT_TABLE) + "."
        for part in PYPROJECT_TABLE:
            data = data.get(part, {})
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: [{prefix[:-1]}] must be a table")
    config = Config(source=path, prefix=prefix, tables=data)
    from xbdspec.cli import SUBCOMMANDS

    allowed = {*SUBCOMMANDS, SIZES}
    for name, value in data.items():
        if name not in allowed:
            raise ConfigError(
                f"{config.where(name)}: no command is named {name!r}; the tables are "
                f"{', '.join(sorted(allowed))}{_did_you_mean(name, allowed)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"{config.where(name)}: must be a table of options "
                f"([{prefix}{name}] with one key per option), not a {type(value).__name__}"
            )
    return config


def _did_you_mean(key: str, known: Sequence[str] | set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's options by every key that names one: each long option without its
    dashes and the option's destination, with ``-`` and ``_`` alike."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:  # argparse keeps no public list of its actions
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.dest == "config":  # the file cannot name another file
            continue
        names = [s[2:] for s in action.option_strings if s.startswith("--")]
        if action.option_strings:
            names.append(action.dest)
        for name in names:
            found[name.replace("_", "-")] = action
    return found


def _positionals(parser: argparse.ArgumentParser) -> set[str]:
    return {
        a.dest.replace("_", "-")
        for a in parser._actions
        if not a.option_strings and a.dest != argparse.SUPPRESS
    }


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    """One value as the option's type and choices take it from the command line."""
    if isinstance(value, (dict, list)) or type(value) is bool:
        raise ConfigError(
            f"{where}: expected a single value for {action.option_strings[-1]}, not {value!r}"
        )
    if action.type is not None and callable(action.type):
        try:
            value = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"{where}: {value!r} is not a value of {action.option_strings[-1]} ({exc})"
            ) from None
    elif not isinstance(value, str):
        raise ConfigError(f"{where}: {action.option_strings[-1]} takes a string, not {value!r}")
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def _value(action: argparse.Action, value: Any, where: str) -> Any:
    """The option's default from the file's ``value`` (flags, lists and scalars)."""
    if action.nargs == 0:  # store_true / store_false / store_const
        if type(value) is not bool:
            raise ConfigError(f"{where}: {action.option_strings[-1]} is a flag: true or false")
        const = action.const
        if isinstance(action, argparse._StoreFalseAction):
            return not value
        if isinstance(action, argparse._StoreTrueAction):
            return value
        return const if value else action.default
    repeated = isinstance(action, argparse._AppendAction)
    many = action.nargs in ("+", "*") or isinstance(action.nargs, int)
    if repeated or many:
        items = value if isinstance(value, list) else [value]
        converted = [_convert(action, item, f"{where}[{n}]") for n, item in enumerate(items)]
        return _ConfigList(converted) if repeated else converted
    return _convert(action, value, where)


def defaults(config: Config, command: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The defaults the configuration sets for ``command`` (whose options ``parser``
    holds), by destination: the ``sizes`` table, then the command's own table."""
    options = _options(parser)
    positionals = _positionals(parser)
    out: dict[str, Any] = {}
    tables = [(SIZES, config.tables.get(SIZES, {})), (command, config.tables.get(command, {}))]
    for table, items in tables:
        for key, value in items.items():
            where = config.where(table, key)
            normal = key.replace("_", "-")
            if table == SIZES and normal not in _SIZE_KEYS:
                raise ConfigError(
                    f"{where}: no size is named {key!r}; the sizes are "
                    f"{', '.join(_SIZE_KEYS)}{_did_you_mean(normal, _SIZE_KEYS)}"
                )
            action = options.get(normal)
            if action is None:
                if table == SIZES:
                    continue  # a size this command does not take
                if normal in positionals:
                    raise ConfigError(
                        f"{where}: {key} is an argument of the command line, not an "
                        "option; give it there"
                    )
                shown = sorted({a.option_strings[-1][2:] for a in options.values()})
                raise ConfigError(
                    f"{where}: xbdspec {command} has no option {key!r}"
                    f"{_did_you_mean(normal, shown)}; its options are {', '.join(shown)} "
                    f"(xbdspec {command} --help)"
                )
            out[action.dest] = _value(action, value, where)
    return out


#: The keys of the ``sizes`` table (the model's :class:`~xbdspec.model.state.Sizes`, as
#: ``xbdspec explore`` takes them).
_SIZE_KEYS = (
    "commands",
    "bios",
    "ring-slots",
    "grants",
    "grants-per-request",
    "suspends",
    "unplugs",
    "max-users",
)

_HELP = (
    "read option defaults from FILE (TOML; default: ./xbdspec.toml, else "
    "[tool.xbdspec] in ./pyproject.toml); options given here override it"
)


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of ``command`` under the top-level ``parser``."""
    for action in parser._actions:  # the subparsers action is not public either
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    raise ConfigError(f"the command line has no command {command!r}")


def apply(parser: argparse.ArgumentParser, command: str | None, explicit: Path | None) -> None:
    """Set ``command``'s defaults in ``parser`` from the configuration in force.

    An unusable configuration ends the program as a usage error does: the message on
    standard error and exit status 2."""
    parser.add_argument("--config", metavar="FILE", help=_HELP)
    if command is None:
        return
    sub = subparser(parser, command)
    sub.add_argument("--config", metavar="FILE", help=_HELP)
    try:
        config = find(explicit)
        if config is not None:
            sub.set_defaults(**defaults(config, command, sub))
    except ConfigError as exc:
        print(f"xbdspec {command}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = [
    "FILE_NAME",
    "SIZES",
    "Config",
    "ConfigError",
    "apply",
    "defaults",
    "find",
    "load",
    "split_option",
    "subparser",
]
