"""Load and validate a Weavefile (TOML) into immutable rule specifications.

Owns: TOML parsing, the schema (keys, types, defaults), placeholder syntax checks, and
error messages that point at file:line. Knows nothing of the file system beyond reading the
Weavefile, and nothing of jobs, state or scheduling.
"""

from __future__ import annotations

import itertools
import math
import os
import re

from .errors import ManifestError, UsageError, clip, closest, set_value_error
from .jobs import RuleSpec
from .paths import (
    GLOB_CHARS,
    WILDCARD_RE,
    ProjectFiles,
    bad_wildcard_value,
    compile_pattern,
    compile_regex,
    glob_matches,
    has_glob,
    is_outside,
    normalize,
    protected_output,
    substitute,
    unescape,
)
from .projectfile import INCLUDE_WORD, project_digest, read_regular_file
from .resources import MAX_AMOUNT, MAX_GPUS

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import (
        Any,
        Callable,
        Collection,
        Dict,
        List,
        Mapping,
        Optional,
        Sequence,
        Tuple,
        Union,
    )

    # A compiled template: literal strings interleaved with placeholders.
    Template = Tuple[Union[str, "Placeholder"], ...]


def _toml():  # imported on first parse: a Weavefile known to be valid is never parsed
    # tomli on every Python (a dependency): the parser the stdlib vendors as tomllib, but newer
    # (TOML 1.1) and, from its compiled wheels, ~1.6x faster on a large Weavefile.
    try:
        import tomli as toml
    except ImportError:  # pragma: no cover - only if tomli was removed: TOML 1.0 then
        import tomllib as toml
    return toml


TOP_LEVEL_KEYS = ("default", "vars", "resources", "include", "rules")
RULE_KEYS = (
    "inputs",
    "outputs",
    "cmd",
    "foreach",
    "wildcards",
    "resources",
    "cpus",
    "env",
    "retries",
    "retry_delay",
    "timeout",
    "description",
    "temp",
    "depfile",
    "log",
    "order_only",
)

# \Z, not $: `$` also matches before a final newline, which would let "x\n" through.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RULE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
DEFAULT_WILDCARD_REGEX = r"[^/]+"


class Placeholder:
    """One `{...}` in a command: `kind` is inputs/outputs/wildcards/vars/resources/rule/cpus/log.

    `index` is set for `{inputs[i]}` (an int) or `{inputs[1:]}` (a slice), `attr` for
    `{inputs.NAME}` / `{vars.NAME}` etc., both for `{inputs.NAME[i]}` (of a named group).
    """

    __slots__ = ("kind", "index", "attr", "text")

    def __init__(self, kind: str, index: Union[int, slice, None], attr: Optional[str], text: str):
        self.kind, self.index, self.attr, self.text = kind, index, attr, text


def _index(text: str) -> Union[int, slice]:
    """`2` -> 2, `1:` -> slice(1, None): an index of _PLACEHOLDER_RE."""
    if ":" not in text:
        return int(text)
    start, _, stop = text.partition(":")
    return slice(int(start) if start else None, int(stop) if stop else None)


# An index is a number, or a slice as Python writes one (`1:`, `:-1`, `2:4`).
_INDEX = r"-?[0-9]+|-?[0-9]*:-?[0-9]*"  # ([0-9]: \d would take other scripts' digits too)
_PLACEHOLDER_RE = re.compile(
    r"^(?P<kind>[A-Za-z_][A-Za-z0-9_]*)"
    rf"(?:\[(?P<index>{_INDEX})\]|\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\[(?:(?P<attr_index>" + _INDEX + r")|wildcards\.(?P<lookup>[A-Za-z_][A-Za-z0-9_]*))\])?)?$"
)
PLACEHOLDER_KINDS = ("inputs", "outputs", "wildcards", "vars", "resources", "rule", "cpus", "log")


class Manifest:
    """A parsed Weavefile: rules in file order, default targets, vars and resource totals."""

    def __init__(
        self,
        path: str,
        rules: Dict[str, RuleSpec],
        default: List[str],
        variables: Dict[str, Any],
        resources: Dict[str, float],
        digest: str,
        included: Sequence[Tuple[str, bytes]] = (),
        include_lists: Sequence[Tuple[bytes, List[str]]] = (),
        overridden: Optional[Dict[str, str]] = None,
    ):
        self.path = path
        self.root = os.path.dirname(os.path.abspath(path))
        self.rules = rules
        self.default = default
        self.vars = variables
        self.resources = resources
        self.digest = digest
        # The files the Weavefile includes (project-relative path, bytes), depth first; and for
        # each file holding the word `include`, (its bytes, the paths it includes, if any).
        self.included = list(included)
        self.include_lists = list(include_lists)
        # var name -> the text `--set` gave it: a mistake its value causes names the --set.
        self.overridden = dict(overridden or {})

    @property
    def files(self) -> List[str]:
        """The project-relative paths of the Weavefile and of every file it includes."""
        return [os.path.basename(self.path)] + [path for path, _ in self.included]

    def default_targets(self) -> List[str]:
        """The targets built when none are named: `default`, else the first rule."""
        if self.default:
            return list(self.default)
        if self.rules:
            return [next(iter(self.rules))]
        return []


def load_manifest(path: str) -> Manifest:
    """Read and validate the Weavefile at `path`; raises ManifestError on any mistake."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ManifestError("file not found", path=path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror}", path=path) from None
    return parse_manifest(decode_weavefile(raw, path), path, digest_source=raw)


def decode_weavefile(raw: bytes, path: str) -> str:
    """The text of a Weavefile (or a file it includes) read as `raw` from `path`."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ManifestError("not valid UTF-8 text", path=path, line=line) from None


_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_manifest(
    text: str,
    path: str = "Weavefile",
    digest_source: Optional[bytes] = None,
    overrides: Optional[Mapping[str, str]] = None,
    read: Optional[Callable[[str], bytes]] = None,
) -> Manifest:
    """Parse Weavefile `text` (read from `path`, used in messages) into a Manifest, with the
    files it includes (read with `read(project-relative path)`, from disk by default).

    `overrides`: var values given on the command line (`--set NAME=VALUE`), as typed; each
    replaces the `[vars]` value of that name (see `override_var`)."""
    root = os.path.dirname(os.path.abspath(path))
    raw = digest_source if digest_source is not None else text.encode()
    main = _Part(path, os.path.basename(path), raw, text)
    parts = [main]
    _read_includes(main, parts, read or (lambda name: _read_file(os.path.join(root, name))))
    included = [(part.name, part.raw) for part in parts[1:]]
    return _merge(parts, project_digest(raw, included, overrides), overrides or {})


class _Part:
    """One file of a Weavefile: the Weavefile itself or a file it includes, parsed."""

    def __init__(self, path: str, name: str, raw: bytes, text: str, by: Optional[Tuple[_Part, int]] = None):
        self.path = path  # as messages show it
        self.name = name  # project-relative
        self.raw = raw
        self.by = by  # (the part that includes it, the line of its `include`)
        if text.startswith("\ufeff"):
            text = text[1:]  # a UTF-8 byte order mark, as some Windows editors write: not TOML, harmless
        self.data = _parse_toml(text, path)
        self.locator = _Locator(text)
        self.validator = _Validator(path, self.locator)
        self.includes: List[str] = []


class _SheetPart(_Part):
    """An included sample sheet (sheets.py): vars only, each reported at the header line."""

    def __init__(self, path: str, name: str, raw: bytes, by: Tuple[_Part, int]):
        from .sheets import read_sheet

        text = decode_weavefile(raw, path)
        if text.startswith("\ufeff"):
            text = text[1:]
        self.path, self.name, self.raw, self.by = path, name, raw, by
        self.data = {"vars": read_sheet(text, path, name)}
        self.locator = _SheetLocator(text)
        self.validator = _Validator(path, self.locator)
        self.includes = []


def _read_file(path: str) -> bytes:
    return read_regular_file(path)


def _parse_toml(text: str, path: str) -> Dict[str, Any]:
    tomllib = _toml()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POS_RE.search(message)
        line = col = None
        if match:
            line, col = int(match.group(1)), int(match.group(2))
            message = message[: match.start()].strip()
        elif message.endswith("(at end of document)"):
            # Something opened was never closed: point at the last line, where the parser gave up.
            line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
            message = message[: -len("(at end of document)")].strip() + " before the end of the file"
        raise ManifestError(
            f"invalid TOML: {message}", path=path, line=line, col=col, hint=_toml_hint(message)
        ) from None
    except (ValueError, RecursionError) as exc:  # tomllib may raise these on odd inputs
        raise ManifestError(f"invalid TOML: {exc}", path=path) from None


# How deep files may include files that include files: far beyond any project's needs, and
# well inside the interpreter's recursion limit.
INCLUDE_DEPTH_MAX = 64


def _read_includes(part: _Part, parts: List[_Part], read: Callable[[str], bytes], depth: int = 1) -> None:
    """Parse the files `part` includes, and theirs, depth first, appending them to `parts`."""
    if "include" not in part.data:
        return
    line = part.locator.find_top_level("include")

    def refuse(message: str, hint: Optional[str] = None) -> ManifestError:
        return ManifestError(message, path=part.path, line=line, key="include", hint=hint)

    if depth > INCLUDE_DEPTH_MAX:
        raise refuse(
            f"included files nest more than {INCLUDE_DEPTH_MAX} deep",
            "include the files from the Weavefile (or from fewer levels) instead of each from the one before",
        )

    if INCLUDE_WORD not in part.raw:
        # projectfile.known_includes looks for the word to tell a file that includes nothing
        raise refuse("write the key 'include' plainly (not with escapes)")
    for written in part.validator.string_list(part.data["include"], None, "include"):
        name = normalize(written.strip()) if written.strip() and "\0" not in written else ""
        problem = None
        if not name:
            problem = "an empty path" if "\0" not in written else "a NUL character"
        elif os.path.isabs(name) or is_outside(name):
            problem = f"'{written}' is outside the project directory"
        elif any(char in name for char in GLOB_CHARS):
            problem = f"'{written}' is a pattern"
        if problem:
            raise refuse(
                problem,
                "include takes the paths of files inside the project, relative to its directory"
                " (the Weavefile's), such as include = [\"rules/train.toml\"]",
            )
        earlier = next((other for other in parts if other.name == name), None)
        if earlier is not None:
            if earlier.by is None:
                why = "is the Weavefile itself"
            else:
                including, at = earlier.by
                why = f"is already included by {including.path}" + (f":{at}" if at else "")
            raise refuse(f"'{written}' {why}", "each file is included once: remove this entry")
        full = os.path.join(os.path.dirname(parts[0].path), name)
        try:
            raw = read(name)
        except OSError as exc:
            from .projectfile import why_not_a_file

            reason = "cannot be read (permission denied)" if isinstance(exc, PermissionError) else why_not_a_file(full)
            raise refuse(
                f"included file '{written}' {reason}",
                "paths in include are relative to the project directory (the Weavefile's)",
            ) from None
        part.includes.append(name)
        if is_sheet(name):  # a sample sheet: vars, and no includes of its own
            parts.append(_SheetPart(full, name, raw, by=(part, line or 0)))
            continue
        included = _Part(full, name, raw, decode_weavefile(raw, full), by=(part, line or 0))
        parts.append(included)
        _read_includes(included, parts, read, depth + 1)


def _merge(parts: List[_Part], digest: str, overrides: Mapping[str, str]) -> Manifest:
    """The Manifest of a Weavefile's parts: their vars, resources and rules, each defined in one
    file; `default` only in the Weavefile itself."""
    main = parts[0]
    # Every part's validator reports a rule's mistakes at that rule's file and line.
    owners: Dict[str, _Validator] = {}
    overridden: Dict[str, str] = {}
    for part in parts:
        part.validator.rule_owners = owners
        part.validator.overridden = overridden
        part.validator.check_top_level(part.data, main=part is main)
    default = main.validator.string_list(main.data.get("default", []), None, "default")
    if "default" in main.data and not default:
        raise main.validator.error(
            "names no target",
            key="default",
            hint="list the outputs or rules `weave build` builds without targets, or remove the key"
            " (then it builds the first rule)",
        )
    variables: Dict[str, Any] = {}
    var_owners: Dict[str, _Validator] = {}
    resources: Dict[str, float] = {}
    resource_owners: Dict[str, _Validator] = {}
    for part in parts:
        for name, value in part.validator.vars_table(part.data).items():
            if name in variables:
                raise part.validator.var_error(
                    name,
                    f"var '{name}' is also set in {var_owners[name].where_var(name)}",
                    hint="each var is set in one file: remove one",
                )
            variables[name], var_owners[name] = value, part.validator
        for name, amount in part.validator.resource_table(part.data.get("resources", {}), None, "resources").items():
            if name in resources:
                raise part.validator.error(
                    f"resource '{name}' is also set in {resource_owners[name].path}",
                    key="resources",
                    hint="each resource total is set in one file: remove one",
                )
            resources[name], resource_owners[name] = amount, part.validator
    if overrides:
        variables = dict(variables)
        for name, text in overrides.items():
            variables[name] = var_owners.get(name, main.validator).override_var(name, text, variables)
    rules: Dict[str, RuleSpec] = {}
    for part in parts:
        for name, body in part.validator.rules_table(part.data).items():
            if name in rules:
                first = rules[name]
                raise ManifestError(  # at this file's line, not the first definition's
                    f"also defined in {first.path}" + (f":{first.line}" if first.line else ""),
                    path=part.path,
                    line=part.locator.find(name),
                    rule=name,
                    hint="rule names are unique across the Weavefile and the files it includes: rename one",
                )
            owners[name] = part.validator
            rules[name] = part.validator.rule(name, body, variables)
    if not rules:
        raise main.validator.error(
            "no rules defined", hint="add a rule, e.g. [rules.hello] with outputs and cmd"
        )
    main.validator.check_unique_outputs(
        rules, ProjectFiles([part.name for part in parts], os.path.dirname(os.path.abspath(main.path)))
    )
    return Manifest(
        main.path,
        rules,
        default,
        variables,
        resources,
        digest,
        included=[(part.name, part.raw) for part in parts[1:]],
        # Every file holding the word, with or without includes (`-Iinclude` in a command):
        # projectfile.known_includes asks the memo about each.
        include_lists=[(part.raw, part.includes) for part in parts if INCLUDE_WORD in part.raw],
        overridden=overridden,
    )


# The parser's words for the mistakes people make most, and what to do about each.
_TOML_HINTS = (  # by the start of tomli's message, the first that matches
    (
        "Invalid value before the end of the file",
        "the file ends where a value was expected: finish the last key's value (a list [...] or "
        "table {...} must be closed)",
    ),
    ("Unclosed array", 'close the list with ]; its items are separated by commas: inputs = ["a.csv", "b.csv"]'),
    ("Unclosed inline table", "close it with }; an inline table { ... } must stay on one line"),
    (
        "Expected newline or end of document after a statement",
        'one key = value per line: two strings in a row are not joined (write one string, or a list ["a", "b"])',
    ),
    ("Invalid value", 'text needs quotes: cmd = "touch out.txt"; a list needs brackets: inputs = ["a.csv"]'),
    (
        "Illegal character '\\n'",
        "a string is not closed on its line; for text over several lines use '''...''' or \"\"\"...\"\"\"",
    ),
    (
        "Unescaped '\\'",
        "a backslash in \"...\" starts an escape: write \\\\, or use a literal string '...' "
        "(no escapes), handy for shell commands",
    ),
    ("Cannot overwrite a value", "this key is set twice in the same table: keep one"),
    ("Cannot declare", "each table (such as a rule) is declared once: merge the two"),
)


def _toml_hint(message: str) -> Optional[str]:
    for start, hint in _TOML_HINTS:
        if message.startswith(start):
            return hint
    return None


_VAR_KIND_EXAMPLES = {
    "a boolean": "true",
    "a number": "3",
    "a list": "'[64, 32]' (a TOML array of strings, numbers or booleans)",
    "a table": "'{ A = \"x\", B = \"y\" }' (a TOML inline table of strings, numbers or booleans)",
}


def _python_number(text: str) -> Optional[float]:
    """`text` as a finite number in Python's spelling, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _example_of(default: Any, kind: str) -> str:
    """A --set value of the var's kind, for a hint: its own default written as the command
    line takes it (a list as a quoted TOML array)."""
    import json

    if kind == "a list" and default:
        return f"'{json.dumps(default)}' (a TOML array)"
    if kind in ("a number", "a boolean"):
        return json.dumps(default)
    return _VAR_KIND_EXAMPLES.get(kind, "...")


def _var_kind(value: Any) -> Optional[str]:
    """What a var with this value holds, and so what `--set` must give for it (booleans first:
    True is an int); None for what a var may not hold: tables, dates and times, nested lists,
    nan and inf (no command could be given them as text, and the stamp could not record them)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return "a number"
    if isinstance(value, str):
        return "text"
    # (One level of items, checked without recursion: TOML nests 400 deep.)
    if isinstance(value, list) and all(_is_scalar(item) for item in value):
        return "a list"
    if isinstance(value, dict) and value and all(_is_scalar(item) for item in value.values()):
        return "a table"  # looked up by a wildcard's value: {vars.NAME[wildcards.W]}
    return None


def _is_scalar(value: Any) -> bool:
    """Text, a boolean or a finite number: what a list or table var may hold."""
    return isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


def _has_nul(value: Any) -> bool:
    """Whether a var's value (text, or text in a list or table) holds a NUL character, which
    no command line or environment variable can carry: the job would fail to start."""
    if isinstance(value, list):
        return any(isinstance(item, str) and "\0" in item for item in value)
    if isinstance(value, dict):
        return any("\0" in key or (isinstance(item, str) and "\0" in item) for key, item in value.items())
    return isinstance(value, str) and "\0" in value


def _whole_var(value: Any) -> Optional[str]:
    """The var that a value written as "{vars.NAME}" names, else None."""
    if not isinstance(value, str):
        return None
    whole = _WHOLE_VAR_RE.fullmatch(value.strip())
    return whole.group(1) if whole is not None else None


def override_var(name: str, text: str, default: Any, path: str, line: Optional[int]) -> Any:
    """The value of var `name` given as `text` on the command line, of the kind the Weavefile's
    value has: text for a string, a TOML number, boolean or array otherwise (so `--set
    epochs=300` equals `epochs = 300` and reruns nothing)."""
    kind = _var_kind(default)
    if kind == "text":
        value: Any = text
    else:
        try:
            value = _toml().loads(f"value = {text}")["value"]
        except Exception:  # any parse failure means "not a value of this kind"
            value = None
        if value is None and kind == "a number":
            value = _python_number(text)  # `.5`, `5.`: numbers, though not TOML's
    if _has_nul(value):  # a TOML escape (\u0000) in a list, or text from the Python API
        raise UsageError(
            f"--set {name}=...: the value contains a NUL character",
            hint="no command or environment variable can hold one",
        )
    if kind == "text":
        return value
    if _var_kind(value) != kind:
        where = f"{path}:{line}" if line else path
        raise UsageError(
            f"--set {name}={clip(text)}: '{name}' is {kind} in [vars] ({where}), and '{clip(text)}' is not",
            hint=f"e.g. --set {name}={_example_of(default, kind)}",
        )
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)  # 300.0 for an integer var is 300, as it would be inserted
    return value


# The key of a `key = value` line: bare or quoted parts, dotted (`a.env`, `"a.b".env`).
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_DOTTED_SPACES_RE = re.compile(r"\s*\.\s*")  # `a . b` in a dotted key or header is `a.b`
_KEY_LINE_RE = re.compile(r"\s*(" + _KEY_PART + r"(?:\s*\.\s*" + _KEY_PART + r")*)\s*=")


def line_in_file(path: str, rule: Optional[str], key: Optional[str]) -> Optional[int]:
    """1-based line of `key` in rule `rule` (None: at the top; no key: the rule's header) of the
    Weavefile at `path`, read again for a mistake found after parsing (resolving jobs); None if
    it cannot be told."""
    try:
        with open(path, encoding="utf-8") as handle:
            locator = _Locator(handle.read())
    except (OSError, ValueError):
        return None
    return locator.find(rule, key) if rule is not None else locator.find_top_level(key)


def _spellings(key: str) -> str:
    """A regex for `key` as TOML may write it: bare, "quoted" or 'literal'."""
    escaped = re.escape(key)
    return escaped + '|"' + escaped + '"|' + "'" + escaped + "'"


def _outside_multiline_strings(lines: List[str]) -> Tuple[List[str], List[int]]:
    """`lines`, with those that begin inside a multi-line string (three quotes of either kind)
    or inside a multi-line array or inline table replaced by empty ones: no key or table
    header begins there; and the number of brackets open where each line begins (-1: inside a
    multi-line string). A triple quote or a bracket in a comment or a one-line string counts
    for nothing."""
    result: List[str] = []
    depths: List[int] = []
    string: Optional[str] = None  # the delimiter of the multi-line string open at the end of the line
    depth = 0  # brackets open at the end of the line
    for line in lines:
        result.append(line if string is None and depth == 0 else "")
        depths.append(-1 if string is not None else depth)
        if string is None and depth == 0 and not any(char in line for char in "[{'\""):
            continue  # nothing on it can leave a string or bracket open: most lines
        string, depth = _scan_line(line, string, depth)
    return result, depths


def _scan_line(line: str, string: Optional[str], depth: int) -> Tuple[Optional[str], int]:
    """The multi-line string (its delimiter) and the number of brackets open after `line`,
    given those open before it; strings, escapes and comments as TOML reads them."""
    position, size = 0, len(line)
    while position < size:
        if string is not None:
            end = _closing(line, position, string)
            if end < 0:
                return string, depth
            string, position = None, end + 3
            continue
        char = line[position]
        if char == "#":
            break
        if line.startswith('"""', position) or line.startswith("'''", position):
            string, position = line[position : position + 3], position + 3
            continue
        if char in "\"'":
            end = _closing(line, position + 1, char)
            position = size if end < 0 else end + 1
            continue
        if char in "[{":
            depth += 1
        elif char in "]}" and depth:
            depth -= 1
        position += 1
    return string, depth


def _closing(line: str, position: int, delimiter: str) -> int:
    """Where `delimiter` closes a string that continues at `position` (-1: not on this line);
    in a basic string (double quotes) a backslash escapes the character after it."""
    if delimiter[0] == "'":
        return line.find(delimiter, position)
    while True:
        end = line.find(delimiter, position)
        if end < 0:
            return -1
        backslashes = 0
        while end - backslashes - 1 >= position and line[end - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return end
        position = end + 1


# An included file with one of these suffixes is a sample sheet (sheets.py): the character
# between its fields.
SHEET_SUFFIXES = {".tsv": "\t", ".tab": "\t", ".csv": ","}


def is_sheet(name: str) -> bool:
    """Whether an included path names a sample sheet rather than TOML."""
    return name.lower().endswith(tuple(SHEET_SUFFIXES))


class _Locator:
    """Finds the line of a table or key in the Weavefile text, for error messages.

    tomllib keeps no positions, so this scans the text; it is only used on the error path.
    """

    def __init__(self, text: str):
        self._text = text
        self._lines: Optional[List[str]] = None
        self._depths: List[int] = []
        self._headers: Optional[Dict[str, int]] = None
        # (rule, key) -> line of [rules.RULE.KEY], or of a dotted key `RULE.KEY = ...` under
        # [rules] (or `rules.RULE.KEY = ...` at top level)
        self._subtables: Dict[Tuple[str, str], int] = {}

    @property
    def lines(self) -> List[str]:
        """Lines as TOML counts them (splitlines() also breaks at U+2028, U+0085, ...), with
        those inside a multi-line string, array or inline table blanked: a `[ -f x ]` or
        `outputs=$(ls)` line of a shell script in `cmd` is neither a table header nor a key.
        Found on first use: a valid Weavefile never needs them."""
        if self._lines is None:
            self._lines, self._depths = _outside_multiline_strings(self._text.split("\n"))
        return self._lines

    def _inline_key(self, header: int, key_re: re.Pattern[str]) -> Optional[int]:
        """The line of a key of a rule written as a multi-line inline table (`NAME = {` on line
        `header`): one bracket deep below it, until the table closes."""
        raw = self._text.split("\n")
        for index in range(header, len(raw)):
            depth = self._depths[index]
            if depth == 0:
                break
            if depth == 1 and key_re.match(raw[index]):
                return index + 1
        return None

    def _header_line(self, rule: Optional[str]) -> Optional[int]:
        if rule is None:
            return None
        if self._headers is None:
            # One pass over the text, on first use: rules are looked up once each, so a
            # per-rule scan would make loading quadratic in the number of rules.
            self._headers = {}
            inline: Dict[str, int] = {}  # rules written as `name = {...}` (or `name.key = ...`)
            only_subtables: Dict[str, int] = {}  # rules met as [rules.NAME.KEY] before [rules.NAME]
            table = ""
            for number, line in enumerate(self.lines, 1):
                stripped = line.strip()
                if stripped.startswith("[") and "]" in stripped:
                    # [rules.x], or [[rules.x]] (an array of tables: a mistake, reported at it)
                    start = 2 if stripped.startswith("[[") else 1
                    header = _DOTTED_SPACES_RE.sub(".", stripped[start : _header_end(stripped, start)].strip())
                    table = header
                    if header.startswith("rules."):
                        name, sub = _split_rule_header(header[len("rules.") :])
                        if sub:  # [rules.NAME.KEY]: a key of the rule written as a sub-table
                            self._subtables.setdefault((name, sub), number)
                            only_subtables.setdefault(name, number)
                        else:
                            self._headers.setdefault(name, number)
                elif table in ("rules", "") and stripped[:1] not in ("", "#"):
                    match = _KEY_LINE_RE.match(line)
                    if match is None:
                        continue
                    key = _DOTTED_SPACES_RE.sub(".", match.group(1))
                    if table == "":  # at top level only `rules.NAME... = ...` names a rule
                        if not key.startswith("rules."):
                            continue
                        key = key[len("rules.") :]
                    name, sub = _split_rule_header(key)
                    inline.setdefault(name, number)
                    if sub:  # NAME.KEY = ...: a key of the rule written as a dotted key
                        self._subtables.setdefault((name, sub), number)
            for found in (inline, only_subtables):
                for name, number in found.items():
                    self._headers.setdefault(name, number)
        return self._headers.get(rule)

    def find_in_table(self, table: str, key: str) -> Optional[int]:
        """1-based line of `key` inside the top-level table `[table]` (or of its own sub-table
        `[table.key]`), else the table's header's line."""
        sub_re = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\.\s*(?:" + _spellings(key) + r")\s*\]")
        for index, line in enumerate(self.lines):
            if sub_re.match(line):
                return index + 1
        header_re = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
        key_re = re.compile(r'^\s*(?:' + _spellings(key) + r")\s*=")
        header: Optional[int] = None
        for index, line in enumerate(self.lines):
            if header is None:
                if header_re.match(line):
                    header = index + 1
                continue
            if line.lstrip().startswith("["):
                break
            if key_re.match(line):
                return index + 1
        if header is None:  # written as dotted keys at the top: `vars.x = ...`
            dotted_re = re.compile(r"^\s*" + re.escape(table) + r"\s*\.\s*(?:" + _spellings(key) + r")\s*=")
            for index, line in enumerate(self.lines):
                if line.lstrip().startswith("["):
                    break
                if dotted_re.match(line):
                    return index + 1
            return self.find_top_level(table)  # an inline table: `resources = { gpu = inf }`
        return header

    def find(self, rule: Optional[str] = None, key: Optional[str] = None) -> Optional[int]:
        """1-based line of `key` inside rule `rule` (or at top level); else the rule's header
        (for rules written inside a top-level `rules = {...}`, the line of that key)."""
        header = self._header_line(rule)
        if header is None and rule is not None:
            line = self.find_top_level("rules")
            if line is not None and re.match(r"\s*rules\s*=", self.lines[line - 1]):
                return line
        if key is None:
            return header
        if rule is not None and (rule, key) in self._subtables:
            return self._subtables[(rule, key)]
        if rule is not None and header is None:
            return None
        key_re = re.compile(r'^\s*(?:' + _spellings(key) + r")\s*[=.]")
        table_re = re.compile(r"^\s*\[\[?\s*" + re.escape(key) + r"\s*\]")  # [key] or [[key]]
        if header is not None and header < len(self.lines) and self._depths[header] == 1 and not self.lines[header - 1].lstrip().startswith("["):
            inline = self._inline_key(header, key_re)  # `NAME = {` over several lines
            if inline is not None:
                return inline
        for index in range(header or 0, len(self.lines)):
            line = self.lines[index]
            if line.lstrip().startswith("["):
                if rule is None and table_re.match(line):
                    return index + 1
                if rule is not None or not table_re.match(line):
                    if rule is None:
                        return None
                    break
            if key_re.match(line):
                return index + 1
        return header

    def find_top_level(self, key: str) -> Optional[int]:
        """1-based line where the top-level key `key` first appears: `key = ...` or `key.sub = ...`
        before the first table, or a table header [key], [key.sub] or [[key]] anywhere (for an
        unknown key, such as a mistyped [rulez.a], that find() would not look for)."""
        key_re = re.compile(r'^\s*(?:' + _spellings(key) + r")\s*[=.]")
        table_re = re.compile(r'^\s*\[\[?\s*(?:' + _spellings(key) + r")\s*[\].]")
        at_top = True
        for number, line in enumerate(self.lines, 1):
            if line.lstrip().startswith("["):
                if table_re.match(line):
                    return number
                at_top = False
            elif at_top and key_re.match(line):
                return number
        return None


class _SheetLocator(_Locator):
    """A sheet's lines: every var it sets is reported at its header line (the first line
    that is neither blank nor a '#' comment)."""

    def _header(self) -> Optional[int]:
        for number, line in enumerate(self.lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                return number
        return None

    def find_in_table(self, table: str, key: str) -> Optional[int]:
        return self._header()

    def find(self, rule: Optional[str] = None, key: Optional[str] = None) -> Optional[int]:
        return None

    def find_top_level(self, key: str) -> Optional[int]:
        return self._header()


def _unescape_basic(text: str) -> str:
    """A TOML basic string's escapes (`\\u00e9`, `\\t`, ...) decoded, for matching a quoted
    rule name in a header to the name the parser gave (rare: names written with escapes)."""
    try:
        return _toml().loads(f'v = "{text}"')["v"]
    except Exception:  # not a valid string after all: the parser said so already
        return text


def _header_end(stripped: str, start: int) -> int:
    """Where the `]` closing a table header is: not one inside a quoted key (`[rules."a]b"]`)."""
    quote = None
    for position in range(start, len(stripped)):
        char = stripped[position]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "]":
            return position
    return stripped.find("]")


def _split_rule_header(rest: str) -> Tuple[str, str]:
    """`a`, `a.env`, `"a.b"`, `"a.b".env` (what follows `rules.` in a table header) →
    (rule name, first sub-key or "")."""
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        if end > 0:
            name, tail = rest[1:end], rest[end + 1 :]
            if rest[0] == '"' and "\\" in name:
                name = _unescape_basic(name)
            return name, tail.lstrip(".").split(".")[0].strip("\"'")
        return rest.strip("\"'"), ""
    name, _, tail = rest.partition(".")
    return name, tail.split(".")[0].strip("\"'")


_NUL_HINT = "remove it: no command line or environment variable can hold one"


# What users of Snakemake, make and CI files write for a key or placeholder weave spells
# otherwise: the hint names weave's word.
_SYNONYMS = {
    "threads": "cpus",
    "shell": "cmd",
    "command": "cmd",
    "run": "cmd",
    "script": "cmd",
    "input": "inputs",
    "output": "outputs",
    "deps": "inputs",
    "depends": "inputs",
    "depends_on": "inputs",
    "targets": "outputs",
    "params": "vars",
    "config": "vars",
    "wildcard_constraints": "wildcards",
    "environment": "env",
    "envvars": "env",
    "message": "description",
    "doc": "description",
}


def _top_level_hint(key: str, table: str) -> Optional[str]:
    """The hint for a top-level key (`default`, `include`, ...) found inside a table: in TOML a
    key belongs to the [table] header above it, so it was written too low in the file."""
    if key not in TOP_LEVEL_KEYS:
        return None
    return (
        f"'{key}' is a top-level key, but TOML puts every key under the [table] header above it:"
        f" here {table}; move it above the first [table] of the file"
    )


def _per_rule_values_hint(key: str) -> Optional[str]:
    """For Snakemake's `params` (or a `config` key) in a rule: where such values go in weave."""
    if _SYNONYMS.get(key.lower()) != "vars":
        return None
    return (
        "a rule has no values of its own: put them in the top-level [vars] table and write {vars.NAME} in the"
        " command (a change reruns only the jobs that use it)"
    )


_FILE_HOLDS_HINT = "a file cannot hold other files: put one of them elsewhere"
# `{vars.x_{wildcards.w}}`: a name, then a placeholder inside it; not the shell's or awk's
# braces around one (`{ cat {inputs}; }`, `'{print "{rule}"}'`), whose fix is {{ }}.
_NESTED_RE = re.compile(r"(?<!\{)\{[A-Za-z_][A-Za-z0-9_.\[\]:-]*\{[^{}\s]*\}[^{}\s]*\}(?!\})")
_NESTED_HINT = (
    "names are fixed, not computed (no {vars.x_{wildcards.w}}): to pick a value per wildcard, write one"
    " rule per value, or choose in the command (case {wildcards.w} in a) ...;; b) ...;; esac)"
)


def _listed_combos(rule: RuleSpec, names: Sequence[str], limit: int) -> Optional[List[Dict[str, str]]]:
    """Every combination of values of wildcards `names` when each takes listed foreach values
    and there are at most `limit` combinations; else None (scanned values, or too many)."""
    lists = [rule.foreach.get(name) for name in names]
    if not all(isinstance(values, list) for values in lists):
        return None
    if math.prod(len(values) for values in lists) > limit:  # type: ignore[arg-type]
        return None
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]  # type: ignore[arg-type]


def _listed_outputs(rule: RuleSpec, limit: int) -> List[Tuple[str, str, str]]:
    """(rule, output, normalised) for each output of each job of a pattern rule whose output
    wildcards all take listed foreach values, if there are at most `limit` of them (else none:
    the graph checks those among each build's jobs). A job's output inside its own directory
    output is left out, as the graph allows it (models/{m}/ with models/{m}/metrics.json)."""
    names = list(dict.fromkeys(name for output in rule.outputs for name in wildcard_names_in(output)))
    combos = _listed_combos(rule, names, limit // max(1, len(rule.outputs)))
    found: List[Tuple[str, str, str]] = []
    for values in combos or ():
        job = [(output, normalize(unescape(output)).rstrip("/")) for output in (substitute(o, values) for o in rule.outputs)]
        own_dirs = [key + "/" for output, key in job if output.endswith("/")]
        for output, key in job:
            if not any(key.startswith(directory) for directory in own_dirs):
                found.append((rule.name, output, key))
    return found


class _LogPaths:
    """The paths a rule's `log` may take, for the Weavefile's check of logs: each of them
    where its wildcards take listed values (or it has none), else a regex for them; either
    way all lie in the directory `prefix` (the pattern's literal start)."""

    def __init__(self, rule: RuleSpec):
        self.rule = rule
        pattern = normalize(rule.log or "")
        self.prefix = pattern.split("{", 1)[0].rpartition("/")[0]
        combos = _listed_combos(rule, list(dict.fromkeys(wildcard_names_in(pattern))), 10_000)
        self.known = None if combos is None else {normalize(unescape(substitute(pattern, values))) for values in combos}
        self.regex = None if combos is not None else compile_pattern(pattern, rule.wildcard_regex)[0]

    def names(self, path: str) -> bool:
        """Whether `path` is one of the logs."""
        if self.known is not None:
            return path in self.known
        return path.startswith(self.prefix) and bool(self.regex.fullmatch(path))  # type: ignore[union-attr]

    def within(self, directory: str) -> bool:
        """Whether some of the logs lie inside `directory`."""
        inside = directory + "/"
        return self.prefix == directory or self.prefix.startswith(inside) or any(p.startswith(inside) for p in self.known or ())

    def holders(self) -> List[str]:
        """The logs where known one by one, and the directories holding them (for a pattern,
        those of its literal prefix only: its wildcards' values are not known)."""
        found = list(self.known or ())
        for path in self.known if self.known is not None else (self.prefix + "/",):
            parent = path.rpartition("/")[0]
            while parent:
                found.append(parent)
                parent = parent.rpartition("/")[0]
        return found


def _nested_placeholder(text: str) -> Optional[str]:
    """The first `{...{...}...}` in `text` (a placeholder written inside another), if any."""
    match = _NESTED_RE.search(text)
    return match.group(0) if match else None


def _did_you_mean(word: str, choices: Sequence[str]) -> Optional[str]:
    synonym = _SYNONYMS.get(word.lower())
    if synonym in choices:
        return f"did you mean '{synonym}'?"
    close = closest(word, choices)
    return f"did you mean '{close}'?" if close else None


# [0-9], not \d: \d (and float()) would also take other scripts' digits, such as '٣'.
# Longer spellings first: alternatives are tried in order ('min' before 'm', 'ms' before 'm').
_DURATION_RE = re.compile(
    r"([0-9]+(?:\.[0-9]+)?)\s*(milliseconds?|msecs?|ms|minutes?|mins?|m|seconds?|secs?|s|hours?|hrs?|h|days?|d)"
)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration_unit(spelled: str) -> float:
    if spelled.startswith(("ms", "milli")):
        return _DURATION_UNITS["ms"]
    if spelled.startswith("mi") or spelled == "m":
        return _DURATION_UNITS["m"]
    return _DURATION_UNITS[spelled[0]]


MAX_DURATION = 3650 * 86400  # ten years: a timeout or retry delay beyond it is a mistake


def parse_duration(value: Any) -> float:
    """'90s', '1h30m', '500ms' or a number of seconds → seconds; ValueError if malformed."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float
            seconds = math.inf
        if not math.isfinite(seconds):
            raise ValueError("a duration must be a finite number of seconds")
        if seconds < 0:
            raise ValueError("a duration cannot be negative")
        if seconds > MAX_DURATION:  # (a wait that long overflows the clock's arithmetic)
            raise ValueError(f"a duration must be at most {MAX_DURATION // 86400:,} days")
        return seconds
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '90s', '2h' or '1h30m'")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    try:
        number: Optional[float] = float(text) if text.isascii() else None
    except ValueError:
        number = None
    if number is not None:  # (outside the try: its own errors, the limit's, are the message)
        return parse_duration(number)
    position, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _duration_unit(match.group(2))
        position = match.end()
    if position != len(text):
        raise ValueError(f"'{value}' is not a duration such as '90s', '2h' or '1h30m'")
    if not math.isfinite(total):  # so many digits that float() gave inf
        raise ValueError("a duration must be a finite number of seconds")
    return parse_duration(total)




def _amount_in_range(amount: Union[int, float]) -> bool:
    """Not nan or inf, and at most MAX_AMOUNT (comparing a huge int with a float is exact)."""
    return not (isinstance(amount, float) and math.isnan(amount)) and abs(amount) <= MAX_AMOUNT


def _show_amount(amount: Union[int, float]) -> str:
    text = repr(amount)
    return text if isinstance(amount, float) or len(text) <= 20 else f"a {len(text)}-digit integer"


def _shown(value: Any) -> str:
    """A scalar as the Weavefile spells it (`true`, `"2"`, `1.5`), for messages: not Python's
    `True` or `'2'`; a table or list by its kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _type_name(value)


def _holding(value: Any) -> str:
    """What a list holds, for messages: `a boolean, true`; `a table`."""
    shown = _shown(value)
    return _type_name(value) if shown == _type_name(value) else f"{_type_name(value)}, {shown}"


def _type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _foreach_value_ok(value: Any) -> bool:
    """A value a foreach list may hold: text or a finite number (put into paths as text)."""
    if isinstance(value, str):
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: object) -> str:
    """A var's value as inserted into a command or path: lists space-separated, booleans
    lowercase, floats without a zero fraction."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return " ".join(format_value(v) for v in value)
    return str(value)


_VAR_PLACEHOLDER = r"\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\}"
_WHOLE_VAR_RE = re.compile(_VAR_PLACEHOLDER)
# `{vars.NAME}` in a path; `{{` and `}}` are matched first so that escaped braces stay literal.
_VAR_IN_PATH_RE = re.compile(r"\{\{|\}\}|" + _VAR_PLACEHOLDER)


# The body of `{vars.NAME[wildcards.W]}`, a lookup in a table var (in inputs, cmd, env, depfile).
_LOOKUP_BODY_RE = re.compile(r"\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*wildcards\.([A-Za-z_][A-Za-z0-9_]*)\s*\]\s*")


def lookup_in(name: str) -> Optional[Tuple[str, str]]:
    """(var, wildcard) when a name wildcard_names_in gives is a table var lookup, else None."""
    if not name.lstrip().startswith("vars."):
        return None
    found = _LOOKUP_BODY_RE.fullmatch(name)
    return (found.group(1), found.group(2)) if found is not None else None


def fill_lookups(pattern: str, value_of: Callable[[str, str], object]) -> str:
    """An input pattern with each `{vars.NAME[wildcards.W]}` replaced by `value_of(NAME, W)`,
    inserted as a var is (`{vars.NAME}`): as written, a glob in it expanded, its braces literal."""

    def replace(match: re.Match[str]) -> str:
        found = lookup_in(match.group(1)) if match.group(1) is not None else None
        if found is None:
            return match.group(0)  # a wildcard, or an escaped brace: for paths.fill
        return format_value(value_of(*found)).replace("{", "{{").replace("}", "}}")

    return WILDCARD_RE.sub(replace, pattern)


def wildcard_names_in(pattern: str) -> List[str]:
    """Names of the `{wildcards}` in a path pattern, in order of appearance."""
    if "{" not in pattern:
        return []  # most paths: no regex scan
    return [m.group(1) for m in WILDCARD_RE.finditer(pattern) if m.group(1) is not None]


# The pieces of a template's text (_template_shape): literal text, a placeholder's body, and
# the two mistakes the text alone shows, in the order template() meets them.
_LITERAL, _PLACEHOLDER, _SHELL_BRACES, _UNBALANCED = object(), object(), object(), object()


def _template_shape(text: str) -> Tuple[Tuple[object, str], ...]:
    """`text` split into literal runs (`{{`/`}}` undoubled) and placeholder bodies; a `${NAME}`
    that names no placeholder kind (the shell's syntax) and an unbalanced brace are pieces of
    their own, for template() to report where it meets them."""
    pieces: List[Tuple[object, str]] = []
    position = 0
    literal: List[str] = []
    for match in WILDCARD_RE.finditer(text):
        literal.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token == "{{":
            literal.append("{")
            continue
        if token == "}}":
            literal.append("}")
            continue
        body = match.group(1).strip()
        if literal:
            joined = "".join(literal)
            if joined:
                pieces.append((_LITERAL, joined))
            literal = []
        if match.start() and text[match.start() - 1] == "$" and body.split(".")[0].split("[")[0] not in PLACEHOLDER_KINDS:
            pieces.append((_SHELL_BRACES, body))
        else:
            pieces.append((_PLACEHOLDER, body))
    literal.append(text[position:])
    bare = WILDCARD_RE.sub("", text)
    if "{" in bare or "}" in bare:
        pieces.append((_UNBALANCED, ""))
    rest = "".join(literal)
    if rest:
        pieces.append((_LITERAL, rest))
    return tuple(pieces)


class _Validator:
    def __init__(self, path: str, locator: _Locator):
        self.path = path
        self.locator = locator
        self._placeholders: Dict[str, Tuple[Optional[str], Optional[int], Optional[str]]] = {}
        self._shapes: Dict[str, Tuple[Tuple[object, str], ...]] = {}  # template text -> _template_shape
        self.overridden: Dict[str, str] = {}  # var name -> the text --set gave it (shared by a Weavefile's files)
        self.rule_owners: Dict[str, _Validator] = {}  # rule name -> the validator of its file

    def error(
        self, message: str, rule: Optional[str] = None, key: Optional[str] = None, hint: Optional[str] = None
    ) -> ManifestError:
        owner = self.rule_owners.get(rule) if rule is not None else None
        if owner is not None and owner is not self:  # a rule written in another file
            return owner.error(message, rule, key, hint)
        line = self.locator.find(rule, key) if (rule is not None or key) else None
        return ManifestError(message, path=self.path, line=line, rule=rule, key=key, hint=hint)

    def var_value_error(
        self, message: str, rule: str, var: Optional[str], hint: Optional[str] = None, key: str = "foreach"
    ) -> UsageError:
        """An error about a value of a rule's `key` (foreach values, cpus) that may come from
        var `var`: when that var was given with --set, it names the --set, not the Weavefile's
        line."""
        if var is not None and var in self.overridden:
            return set_value_error(var, self.overridden[var], rule, key, message, hint)
        return self.error(message, rule, key, hint=hint)

    def var_error(self, name: str, message: str, hint: Optional[str] = None) -> ManifestError:
        """An error about the value of var `name`, at its line in [vars]."""
        return ManifestError(
            message, path=self.path, line=self.locator.find_in_table("vars", name), key=name, hint=hint
        )

    def check_top_level(self, data: Dict[str, Any], main: bool) -> None:
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                raise ManifestError(
                    "unknown top-level key",
                    path=self.path,
                    line=self.locator.find_top_level(key),
                    key=key,
                    hint=_did_you_mean(key, TOP_LEVEL_KEYS)
                    or f"valid top-level keys: {', '.join(TOP_LEVEL_KEYS)}",
                )
            if key == "default" and not main:
                raise ManifestError(
                    "may be set only in the Weavefile itself, not in a file it includes",
                    path=self.path,
                    line=self.locator.find_top_level(key),
                    key=key,
                    hint="move it to the Weavefile",
                )

    def vars_table(self, data: Dict[str, Any]) -> Dict[str, Any]:
        variables = data.get("vars", {})
        if not isinstance(variables, dict):
            raise self.error(f"must be a table, got {_type_name(variables)}", key="vars")
        for name, value in variables.items():
            if not NAME_RE.match(name):
                raise self.var_error(name, f"variable name '{name}' must be an identifier")
            if name in TOP_LEVEL_KEYS:  # `default = [...]` written below [vars] lands here
                raise self.var_error(
                    name,
                    f"variable '{name}' has the name of a top-level key",
                    hint=f"{_top_level_hint(name, '[vars]')} (or, for a variable, choose another name)",
                )
            if value == {}:
                raise self.var_error(
                    name,
                    f"variable '{name}' is an empty table",
                    hint=f"a table var maps a wildcard's values to values: add lines such as A = \"...\" under [vars.{name}]",
                )
            if _var_kind(value) is None:
                raise self.var_error(
                    name,
                    f"variable '{name}' must be a string, number, boolean, a list of those, or a table"
                    " of strings, numbers and booleans",
                    hint=(
                        f"a table var maps keys (a wildcard's values) to values, one level deep: "
                        f"[vars.{name}] with KEY = \"value\" lines, used as {{vars.{name}[wildcards.NAME]}}"
                        if isinstance(value, dict)
                        else f"write a date or time as text ({name} = \"1979-05-27\"); nan, inf, tables "
                        "and lists inside lists cannot be put in a command"
                    ),
                )
            if _has_nul(value):
                raise self.var_error(
                    name,
                    f"variable '{name}' contains a NUL character",
                    hint="remove it: no command or environment variable can hold one",
                )
        return variables

    def where_var(self, name: str) -> str:
        line = self.locator.find_in_table("vars", name)
        return f"{self.path}:{line}" if line else self.path

    def rules_table(self, data: Dict[str, Any]) -> Dict[str, Any]:
        rules_data = data.get("rules", {})
        if not isinstance(rules_data, dict):
            raise self.error(
                f"must be a table of rules, got {_type_name(rules_data)}",
                key="rules",
                hint="write each rule as its own table: [rules.NAME]"
                + (" (not [[rules]])" if isinstance(rules_data, list) else ""),
            )
        return rules_data

    def override_var(self, name: str, text: str, variables: Dict[str, Any]) -> Any:
        """The value `--set NAME=TEXT` gives var `name`, which this file sets."""
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise UsageError(
                f"--set {name}=...: {self.path} has no var '{name}' in [vars]",
                hint=_did_you_mean(name, sorted(variables))
                or f"its vars: {known}; declare a var (with its default) in [vars] to set it",
            )
        line = self.locator.find_in_table("vars", name)
        value = override_var(name, text, variables[name], self.path, line)
        self.overridden[name] = text
        return value

    def amount_var(self, value: Any, variables: Dict[str, Any], rule: str, key: str) -> Any:
        """`cpus` or a resource amount written as "{vars.NAME}": the var's number (so that
        `--set threads=8` sets it). Only scheduling: not part of the jobs' recipes."""
        name = _whole_var(value)
        if name is None:
            return value  # a number, or the type check says what is wrong
        number = self.var_value(name, variables, rule, key, [])
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise self.error(
                f"'{value}' must name a number, and var '{name}' is {_type_name(number)}",
                rule,
                key,
                hint=f"set it to a number in [vars] ({name} = 4)",
            )
        return number

    def string_list(self, value: Any, rule: Optional[str], key: str) -> List[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise self.error(f"must be a list of strings, got {_type_name(value)}", rule, key)
        for item in value:
            if not isinstance(item, str):
                raise self.error(f"must be a list of strings; it holds {_holding(item)}", rule, key)
        return list(value)

    def resource_table(self, value: Any, rule: Optional[str], key: str) -> Dict[str, float]:
        if not isinstance(value, dict):
            raise self.error(
                f"must be a table such as {{ gpu = 1 }}, got {_type_name(value)}", rule, key
            )
        result: Dict[str, float] = {}
        for name, amount in value.items():
            result[name] = self._amount(name, amount, rule, key)
        return result

    def _amount(self, name: str, amount: Any, rule: Optional[str], key: str) -> float:
        """Resource `name`'s amount, checked; a mistake in the top-level [resources] is
        reported at the amount's own line."""

        def fail(message: str, hint: Optional[str] = None) -> ManifestError:
            if rule is None:
                return ManifestError(message, path=self.path, line=self.locator.find_in_table(key, name), key=key, hint=hint)
            return self.error(message, rule, key, hint=hint)

        if not NAME_RE.match(name):
            raise fail(f"resource name '{name}' must be an identifier")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise fail(
                f"resource '{name}' must be a non-negative number, got {_shown(amount)}",
                hint=_top_level_hint(name, "[resources]") if rule is None else None,
            )
        if not _amount_in_range(amount):
            raise fail(
                f"resource '{name}' must be a finite number of at most {MAX_AMOUNT:.0e}, got {_show_amount(amount)}",
                hint="amounts are counts such as gpu = 1 or mem_gb = 64",
            )
        if name == "gpu" and (amount != int(amount) or amount > MAX_GPUS):
            # Checked here, not first by the build: `weave plan` and `list` say it too, with the line.
            limit = f" (at most {MAX_GPUS})" if amount > MAX_GPUS else ""
            raise fail(
                f"resource 'gpu' must be a whole number of GPUs{limit}, got {_show_amount(amount)}",
                hint="GPUs are handed out whole: gpu = 1",
            )
        return amount

    def var_value(self, name: str, variables: Dict[str, Any], rule: str, key: str, used: List[str]) -> Any:
        """The value of var `name` for `{vars.NAME}` in a command, env, path or foreach."""
        if name not in variables:
            raise self.error(
                f"unknown placeholder '{{vars.{name}}}': no var '{name}' in [vars]",
                rule,
                key,
                hint=_did_you_mean(name, sorted(variables)) or "declare it in [vars]",
            )
        used.append(name)
        return variables[name]

    def expand_vars(
        self,
        text: str,
        variables: Dict[str, Any],
        rule: str,
        key: str,
        used: List[str],
        chosen: Optional[Dict[str, Any]] = None,
    ) -> str:
        """`{vars.NAME}` in a path replaced by the var's value (braces in it kept literal);
        `chosen`: the item to put in for a list var (expand_path)."""
        if "vars." not in text:
            return text  # nearly every path: no regex scan

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0)  # {{ or }}: an escaped brace, left for the path parser
            value = self.var_value(name, variables, rule, key, used)
            if chosen is not None and name in chosen:
                value = chosen[name]
            elif isinstance(value, (dict, list)):
                raise self.error(
                    f"'{{vars.{name}}}' is {_type_name(value)}; a path takes a single value",
                    rule,
                    key,
                    hint=f"a table var is looked up by a wildcard's value (in inputs, cmd, env and depfile): {{vars.{name}[wildcards.NAME]}}"
                    if isinstance(value, dict)
                    else f"for one job per item, use foreach = {{ NAME = \"{{vars.{name}}}\" }} (a list var"
                    " expands to a path per item in inputs and outputs only)",
                )
            return format_value(value).replace("{", "{{").replace("}", "}}")

        return _VAR_IN_PATH_RE.sub(substitute, text)

    def expand_path(self, text: str, variables: Dict[str, Any], rule: str, key: str, used: List[str]) -> List[str]:
        """An input or output with its `{vars.NAME}` replaced; a list var gives a path per item
        (several: every combination, in order), as Snakemake's `expand()` in `input:` or
        `output:` does: one job reading or writing them all."""
        lists = [
            name
            for name in dict.fromkeys(match.group(1) for match in _VAR_IN_PATH_RE.finditer(text) if match.group(1))
            if isinstance(variables.get(name), list)
        ]
        if not lists:
            return [self.expand_vars(text, variables, rule, key, used)]
        return [
            self.expand_vars(text, variables, rule, key, used, dict(zip(lists, combination)))
            for combination in itertools.product(*(variables[name] for name in lists))
        ]

    def paths(
        self, value: Any, rule: str, key: str, variables: Dict[str, Any], used: List[str]
    ) -> Tuple[List[str], Dict[str, List[int]]]:
        """inputs/outputs: a string, a list of strings, or a table of named strings/lists;
        `{vars.NAME}` in them is replaced by the var's value."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            if not set(map(type, value)) <= {str}:  # (TOML gives str itself, never a subclass)
                raise self.error("must be a list of path strings", rule, key)
            items, names = list(value), {}
        elif isinstance(value, dict):
            items, names = [], {}
            for name, entry in value.items():
                if not NAME_RE.match(name):
                    raise self.error(f"name '{name}' must be an identifier", rule, key)
                entries = [entry] if isinstance(entry, str) else entry
                if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                    raise self.error(f"'{name}' must be a path string or a list of them", rule, key)
                names[name] = list(range(len(items), len(items) + len(entries)))
                items.extend(entries)
        else:
            raise self.error(f"must be a path, a list of paths or a table of named paths, got {_type_name(value)}", rule, key)
        # The checks below look at all the items at once first: a rule listing 1,000 headers
        # (a generated Weavefile) has no braces, NULs or blank paths in nearly every case.
        joined = "\n".join(items)
        if "vars." in joined:
            if key in ("inputs", "outputs", "order_only"):  # a list var: a path per item
                expanded = [self.expand_path(item, variables, rule, key, used) for item in items]
                if key == "outputs" and items and not any(expanded):
                    raise self.error(
                        "has no path left: its list vars are empty",
                        rule,
                        key,
                        hint="give the list var an item (a rule without outputs would run at every build)",
                    )
                starts = list(itertools.accumulate([0] + [len(paths) for paths in expanded]))
                names = {name: [n for i in indices for n in range(starts[i], starts[i + 1])] for name, indices in names.items()}
                items = [path for paths in expanded for path in paths]
            else:
                items = [self.expand_vars(item, variables, rule, key, used) for item in items]
            joined = "\n".join(items)
        plain = "{" not in joined and "}" not in joined and "\0" not in joined
        if plain and all(map(str.strip, items)):  # (every item not blank)
            return items, names
        for item in items:
            if not item.strip():
                raise self.error("contains an empty path", rule, key)
            if "\0" in item:
                raise self.error("contains a NUL character", rule, key)
            self.check_braces(item, rule, key)
        return items, names

    def log_path(
        self, value: Any, spec: RuleSpec, variables: Dict[str, Any], used: List[str], wildcards: Sequence[str]
    ) -> str:
        """A rule's `log`: one path inside the project, with the outputs' wildcards at most."""
        name = spec.name
        if not isinstance(value, str):
            raise self.error(
                f"must be a path such as \"logs/{{sample}}.log\", got {_type_name(value)}", name, "log"
            )
        (path,), _ = self.paths(value, name, "log", variables, used)
        normalized = path.replace("\\", "/")
        if os.path.isabs(normalized) or is_outside(normalize(normalized)) or "/../" in f"/{normalized}/":
            raise self.error(
                f"log '{path}' is outside the project directory or has a '..' step",
                name,
                "log",
                hint="a log is a relative path inside the project, e.g. \"logs/train.log\", or \"logs/map/{sample}.log\" with the outputs' wildcards",
            )
        if normalized.endswith("/"):
            raise self.error(f"log '{path}' is a directory", name, "log", hint="name the file, e.g. \"logs/x.log\"")
        self.check_path_pattern(
            path, name, "log", wildcards, "no output has", "each job needs its own log: use the outputs' wildcards"
        )
        missing = [w for w in wildcards if w not in wildcard_names_in(path)]
        if missing:
            raise self.error(
                f"log '{path}' lacks wildcard '{{{missing[0]}}}' of the outputs: its jobs would share one log",
                name,
                "log",
                hint="use every wildcard of the outputs in the log's path",
            )
        return path

    def check_path_pattern(
        self, path: str, name: str, key: str, wildcards: Sequence[str], whose: str, hint: str, glob_hint: Optional[str] = None
    ) -> None:
        """Refuse a glob character in `path`, or a wildcard that is not among `wildcards`
        (`whose`: what the message says of it; `hint` is followed by the ones it may use)."""
        if not GLOB_CHARS.isdisjoint(WILDCARD_RE.sub("", path) if "{" in path else path):
            raise self.error(f"{key} '{path}' contains a glob character", name, key, hint=glob_hint)
        for wildcard in wildcard_names_in(path):
            if wildcard not in wildcards:
                raise self.error(
                    f"{key} '{path}' uses wildcard '{{{wildcard}}}', which {whose}",
                    name,
                    key,
                    hint=hint + (f" ({', '.join('{' + w + '}' for w in wildcards)})" if wildcards else " (this rule has none)"),
                )

    def order_only_paths(
        self, value: Any, spec: RuleSpec, variables: Dict[str, Any], wildcards: Sequence[str]
    ) -> List[str]:
        """A rule's `order_only`: paths in the project (no globs), with the rule's wildcards at
        most, made before its jobs run without being their inputs."""
        name = spec.name
        if not isinstance(value, (str, list)):
            raise self.error(f"must be a path or a list of paths, got {_type_name(value)}", name, "order_only")
        # (its vars are not the job's: a path made first, not read, is not in its signature)
        items, _ = self.paths(value, name, "order_only", variables, [])
        for path in items:
            normalized = path.replace("\\", "/")
            if os.path.isabs(normalized):
                raise self.error(
                    f"order_only '{path}' is an absolute path",
                    name,
                    "order_only",
                    hint="write it relative to the project directory: order_only names files of this project that rules make",
                )
            if is_outside(normalize(normalized)):
                raise self.error(
                    f"order_only '{path}' is outside the project directory",
                    name,
                    "order_only",
                    hint="order_only names files other rules of this Weavefile make (a generated header, say)",
                )
            self.check_path_pattern(
                path, name, "order_only", wildcards, "the rule does not have", "use the rule's wildcards", "name each file"
            )
        return items

    def temp_outputs(self, value: Any, spec: RuleSpec, variables: Dict[str, Any]) -> Tuple[int, ...]:
        """`temp`: true (every output), false, or a list of the rule's outputs (as written,
        or by their names in a table of outputs): their positions in `spec.outputs`."""
        if isinstance(value, bool):
            return tuple(range(len(spec.outputs))) if value else ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error(
                f"must be true, false or a list of the rule's outputs, got {_type_name(value)}", spec.name, "temp"
            )
        for item in value:
            if not isinstance(item, str):
                raise self.error(
                    f"must list the rule's outputs as strings, got {_type_name(item)} in the list", spec.name, "temp"
                )
        positions: List[int] = []
        for item in value:
            expanded = item
            if item in spec.output_names:
                found = spec.output_names[item]
                if not found:
                    continue  # a group of outputs whose list var is empty: no file to name
            else:
                every = self.expand_path(item, variables, spec.name, "temp", [])  # (a list var: each of its outputs)
                if not every:
                    continue  # its list var is empty: it names no output
                expanded = every[0] if len(every) == 1 else " ".join(every)
                found = [index for index, output in enumerate(spec.outputs) if output in every]
                if found and len(found) < len(every):
                    found = []
            if not found:
                shown = ", ".join(f"'{output}'" for output in spec.outputs[:5]) or "none"
                expanded_note = f" ('{expanded}' with the vars as set)" if expanded != item else ""
                raise self.error(
                    f"'{item}'{expanded_note} is not one of the rule's outputs",
                    spec.name,
                    "temp",
                    hint=f"list outputs exactly as `outputs` writes them (or their names); the outputs are: {shown}",
                )
            positions.extend(index for index in found if index not in positions)
        return tuple(sorted(positions))

    def check_patterns(self, spec: RuleSpec, constraints: Dict[str, str]) -> None:
        """Compile the rule's output and foreach patterns with its constraints, as the build
        will: a constraint that compiles alone may still break the combined regex."""
        patterns = [o for o in spec.outputs if wildcard_names_in(o)]
        patterns += [p for p in spec.foreach.values() if isinstance(p, str)]
        for pattern in patterns:
            try:
                compile_pattern(pattern, spec.wildcard_regex)
            except re.error as exc:
                culprit = ""
                for key, regex in constraints.items():
                    try:
                        compile_pattern(pattern, {key: regex})
                    except re.error:
                        culprit = f" for '{key}'"
                        break
                raise self.error(
                    f"constraint{culprit} does not work inside pattern '{pattern}': {exc}",
                    spec.name,
                    "wildcards",
                    hint="a constraint may not use backreferences (\\1) or global flags such as (?i); "
                    "groups are fine, best as (?:...)",
                ) from None

    def input_lookup(
        self, name: str, wildcard: str, spec: RuleSpec, variables: Dict[str, Any], wildcards: Sequence[str], body: Dict[str, Any]
    ) -> None:
        """`{vars.NAME[wildcards.W]}` in an input (Snakemake's input function over a sample
        sheet): NAME must be a table var and W a wildcard of the rule; each job's key is
        looked up as its inputs are made (graph.py)."""
        written = f"'{{vars.{name}[wildcards.{wildcard}]}}' in inputs"
        if "cmd" not in body:
            raise self.error(
                f"{written}: an alias rule's inputs cannot look up a table var",
                spec.name,
                "inputs",
                hint="look the file up in the inputs of the rule that reads it",
            )
        value = self.var_value(name, variables, spec.name, "inputs", [])  # (its entries, not the table, make the inputs)
        if not isinstance(value, dict):
            raise self.error(
                f"{written}: var '{name}' is {_type_name(value)}, not a table to look up",
                spec.name,
                "inputs",
                hint=f"write {{vars.{name}}}, or make it a table: [vars.{name}] with a line per value of {wildcard}",
            )
        if wildcard not in wildcards:
            raise self.error(
                f"{written}: no wildcard '{wildcard}' in this rule",
                spec.name,
                "inputs",
                hint=_did_you_mean(wildcard, list(wildcards))
                or (f"this rule's wildcards: {', '.join(wildcards)}" if wildcards else "this rule has no wildcards"),
            )

    def check_braces(self, pattern: str, rule: str, key: str) -> None:
        if "{" not in pattern and "}" not in pattern:
            return  # most paths: no regex scan
        stripped = WILDCARD_RE.sub("", pattern)
        if "{" in stripped or "}" in stripped:
            nested = _nested_placeholder(pattern)
            if nested is not None:
                raise self.error(f"'{nested}' in '{pattern}': a placeholder cannot hold another", rule, key, hint=_NESTED_HINT)
            raise self.error(f"unbalanced brace in '{pattern}'", rule, key, hint="use {{ and }} for literal braces")
        for name in wildcard_names_in(pattern):
            if name.lstrip().startswith("vars.") and "[" in name:
                if key == "inputs" and lookup_in(name) is not None:
                    continue  # checked with the rule's wildcards (input_lookup)
                raise self.error(
                    f"'{{{name}}}' in '{pattern}': a lookup in a table var is for inputs, cmd, env and depfile, not {key}"
                    if key != "inputs"
                    else f"'{{{name}}}' in '{pattern}' is not a lookup in a table var",
                    rule,
                    key,
                    hint="an output names its file by wildcards, and an input may look up the file: "
                    "{vars.NAME[wildcards.W]}"
                    if key != "inputs"
                    else "write {vars.NAME[wildcards.W]}, W a wildcard of the rule",
                )
            if not NAME_RE.match(name):
                raise self.error(
                    f"'{{{name}}}' in '{pattern}' is not a valid wildcard name",
                    rule,
                    key,
                    hint="wildcards are written {name}; constrain them with the rule's `wildcards` table",
                )

    def rule(self, name: str, body: Any, variables: Dict[str, Any]) -> RuleSpec:
        if not RULE_NAME_RE.match(name):
            raise self.error(
                "rule names may contain only ASCII letters, digits, '_', '-' and '.', and start with a letter, digit or '_'",
                name,
            )
        if not isinstance(body, dict):
            raise self.error(f"must be a table, got {_type_name(body)}", name, hint=_top_level_hint(name, "[rules]"))
        spec = RuleSpec(name)
        spec.path = self.path
        spec._locator = self.locator
        for key in body:
            if key not in RULE_KEYS:
                raise self.error(
                    "unknown key",
                    name,
                    key,
                    hint=_top_level_hint(key, f"[rules.{name}]")
                    or _per_rule_values_hint(key)
                    or _did_you_mean(key, RULE_KEYS)
                    or f"valid keys: {', '.join(RULE_KEYS)}",
                )
        used: List[str] = []  # the vars this rule's paths, foreach, cmd and env insert
        spec.inputs, spec.input_names = self.paths(body.get("inputs", []), name, "inputs", variables, used)
        spec.outputs, spec.output_names = self.paths(body.get("outputs", []), name, "outputs", variables, used)
        cmd = body.get("cmd")
        if cmd is not None:
            if isinstance(cmd, list):
                bad = next((c for c in cmd if not isinstance(c, str)), None)
                if bad is not None:
                    raise self.error(f"must be a string or a list of strings; the list holds {_holding(bad)}", name, "cmd")
                cmd = "\n".join(cmd)
            if not isinstance(cmd, str):
                raise self.error(f"must be a string (or a list of strings), got {_type_name(cmd)}", name, "cmd")
            if not cmd.strip():
                raise self.error("is empty", name, "cmd")
            if "\0" in cmd:
                raise self.error("contains a NUL character", name, "cmd", hint=_NUL_HINT)
        spec.cmd = cmd
        if cmd is None:
            extra = [k for k in body if k not in ("inputs", "description", "foreach", "wildcards")]
            if spec.outputs:
                raise self.error(
                    "has outputs but no cmd",
                    name,
                    "outputs",
                    hint="add a cmd that writes the outputs, or remove outputs to make an alias rule",
                )
            if extra:
                raise self.error(
                    f"an alias rule (no cmd) takes only inputs (and foreach); '{extra[0]}' needs a cmd", name, extra[0]
                )
        for output in spec.outputs:
            normalized = output.replace("\\", "/")
            if os.path.isabs(normalized) or normalized.split("/")[0] == ".." or "/../" in f"/{normalized}/":
                escapes = os.path.isabs(normalized) or is_outside(normalize(normalized))
                raise self.error(
                    f"output '{output}' " + ("is outside the project directory" if escapes else "has a '..' step"),
                    name,
                    "outputs",
                    hint="outputs must be relative paths inside the project, without '..'"
                    + (" (check the vars it uses, and --set values)" if self.overridden else ""),
                )
        # Wildcards: names in outputs define them; foreach keys define them too.
        output_wildcards: List[str] = []
        for output in spec.outputs:
            for wildcard in wildcard_names_in(output):
                if wildcard not in output_wildcards:
                    output_wildcards.append(wildcard)
        foreach = body.get("foreach", {})
        if not isinstance(foreach, dict):
            raise self.error(
                "must be a table such as { sample = \"raw/{sample}.txt\" }", name, "foreach"
            )
        # Vars that only choose the foreach values are not part of the jobs' recipes: adding a
        # sample to `samples` makes one new job and leaves the others' commands as they were.
        foreach_vars: List[str] = []
        foreach_sources: Dict[str, Optional[str]] = {}  # foreach key -> the var its values came from
        for key, values in foreach.items():
            if not NAME_RE.match(key):
                raise self.error(f"'{key}' is not a valid wildcard name", name, "foreach")
            source: Optional[str] = None  # the var the values come from, if one
            if isinstance(values, str):
                whole = _WHOLE_VAR_RE.fullmatch(values.strip())
                if whole is not None:  # the var's list of values, or its pattern
                    source = whole.group(1)
                    values = self.var_value(whole.group(1), variables, name, "foreach", foreach_vars)
                    if not isinstance(values, (str, list)):
                        raise self.error(
                            f"'{key}' = '{{vars.{whole.group(1)}}}' must name a list of values or a pattern string",
                            name,
                            "foreach",
                        )
                else:
                    values = self.expand_vars(values, variables, name, "foreach", foreach_vars)
            if isinstance(values, str):
                self.check_braces(values, name, "foreach")
                if key not in wildcard_names_in(values):
                    raise self.error(
                        f"pattern '{values}' for '{key}' must contain {{{key}}}",
                        name,
                        "foreach",
                        hint=f"e.g. foreach = {{ {key} = \"data/{{{key}}}.csv\" }}, or a list of values",
                    )
                # Such a pattern matches no file at all (not even one named with the character):
                # a fan-in would get no inputs, silently.
                glob_char = next((char for char in values if char in GLOB_CHARS), None)
                if glob_char is not None:
                    raise self.error(
                        f"pattern '{values}' for '{key}' holds the glob character '{glob_char}': a foreach pattern"
                        " matches its {wildcards} only",
                        name,
                        "foreach",
                        hint="put a wildcard where the glob is, e.g. \"src/{d}/{s}.txt\" with d a foreach key too"
                        " (see 'Several wildcards in foreach' in docs/weavefile.md)",
                    )
                others = [
                    w for w in wildcard_names_in(values) if w != key and w not in foreach and w not in output_wildcards
                ]
                if others:
                    raise self.error(
                        f"pattern '{values}' uses unknown wildcard '{others[0]}'",
                        name,
                        "foreach",
                        hint="a foreach pattern may use its own key, the rule's other foreach keys and its output wildcards",
                    )
            elif isinstance(values, list) and all(_foreach_value_ok(v) for v in values):
                values = [format_value(v) for v in values]  # as {vars.NAME} inserts a number: 1.0 is 1
                for value in values:
                    problem = bad_wildcard_value(value)
                    if problem:
                        raise self.var_value_error(
                            f"foreach value {value!r} for '{key}' {problem}",
                            name,
                            source,
                            hint="each value is put into the rule's paths: it must name a path inside the project",
                        )
            else:
                if isinstance(values, list):
                    bad = next(v for v in values if not _foreach_value_ok(v))
                    got = f"the list holds {_holding(bad)}"
                else:
                    got = f"got {_type_name(values)}"
                raise self.var_value_error(
                    f"'{key}' must be a pattern string (such as \"data/{{{key}}}.csv\") or a list of values"
                    f" (strings or numbers); {got}" + (f" (from var '{source}')" if source else ""),
                    name,
                    source,
                )
            spec.foreach[key] = values
            foreach_sources[key] = source
        wildcard_table = body.get("wildcards", {})
        if not isinstance(wildcard_table, dict):
            raise self.error("must be a table of regular expressions", name, "wildcards")
        all_wildcards = list(output_wildcards) + [k for k in spec.foreach if k not in output_wildcards]
        for key, regex in wildcard_table.items():
            if not isinstance(regex, str):
                raise self.error(f"constraint for '{key}' must be a regex string", name, "wildcards")
            if key not in all_wildcards:
                raise self.error(
                    f"'{key}' is not a wildcard of this rule",
                    name,
                    "wildcards",
                    hint=_did_you_mean(key, all_wildcards),
                )
            inserted = _WHOLE_VAR_RE.search(regex)
            if inserted is not None:  # as a regex it would match the text "{vars.x}" itself
                raise self.error(
                    f"constraint for '{key}' holds '{inserted.group(0)}': a constraint is a regex, and vars are not"
                    " inserted into it",
                    name,
                    "wildcards",
                    hint="write the regex out (e.g. \"[A-Z][0-9]+\"), or list the values with foreach",
                )
            try:
                compiled = compile_regex(regex)
            except re.error as exc:
                raise self.error(f"invalid regex for '{key}': {exc}", name, "wildcards") from None
            if compiled.groupindex:
                raise self.error(
                    f"constraint for '{key}' may not define named groups", name, "wildcards"
                )
            # Unnamed groups are harmless: wildcards are read back by name.
            spec.wildcard_regex[key] = regex
            values = spec.foreach.get(key)
            if isinstance(values, list):  # listed values must be ones the rule accepts
                for value in values:
                    if not compiled.fullmatch(value):
                        raise self.var_value_error(
                            f"value {value!r} for '{key}' does not match its constraint {regex!r} (in wildcards)",
                            name,
                            foreach_sources.get(key),
                            hint="fix the value, or widen the constraint",
                        )
        for key in all_wildcards:
            spec.wildcard_regex.setdefault(key, DEFAULT_WILDCARD_REGEX)
        spec.wildcard_names = tuple(all_wildcards)
        if wildcard_table:  # only a user's constraint can fail to combine: the default cannot
            self.check_patterns(spec, wildcard_table)
        for input_pattern in spec.inputs:
            for wildcard in wildcard_names_in(input_pattern):
                lookup = lookup_in(wildcard)
                if lookup is not None:
                    self.input_lookup(*lookup, spec, variables, all_wildcards, body)
                    continue
                if wildcard not in all_wildcards:
                    raise self.error(
                        f"input '{input_pattern}' uses wildcard '{{{wildcard}}}', which no output or foreach defines",
                        name,
                        "inputs",
                        hint="every wildcard in inputs must appear in an output pattern or in foreach",
                    )
        for output in spec.outputs:
            missing = [w for w in output_wildcards if w not in wildcard_names_in(output)]
            if missing:
                raise self.error(
                    f"output '{output}' lacks wildcard '{{{missing[0]}}}' that another output has",
                    name,
                    "outputs",
                    hint="every output of a pattern rule must use all of its wildcards",
                )
            if not GLOB_CHARS.isdisjoint(WILDCARD_RE.sub("", output) if "{" in output else output):
                raise self.error(
                    f"output '{output}' contains a glob character",
                    name,
                    "outputs",
                    hint="outputs must be exact paths or {wildcard} patterns",
                )
        # Most rules have none of the keys below: each is checked only when written (a rule's
        # defaults are RuleSpec's), which keeps loading a Weavefile of many rules fast.
        if "resources" in body:
            amounts = body["resources"]
            sources: List[str] = []  # the vars the amounts come from ("{vars.mem}")
            if isinstance(amounts, dict):
                sources = [var for var in map(_whole_var, amounts.values()) if var is not None]
                amounts = {key: self.amount_var(value, variables, name, "resources") for key, value in amounts.items()}
            try:
                spec.resources = self.resource_table(amounts, name, "resources")
            except ManifestError as exc:
                given = next((var for var in sources if var in self.overridden), None)
                if given is None:
                    raise
                raise self.var_value_error(exc.detail, name, given, key="resources", hint=exc.hint) from None
        if "cpus" in body:
            cpus = self.amount_var(body["cpus"], variables, name, "cpus")
            source = _whole_var(body["cpus"])  # "{vars.threads}": a --set of it is the mistake
            if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
                raise self.var_value_error(f"must be a positive integer, got {_shown(cpus)}", name, source, key="cpus")
            if not _amount_in_range(cpus):
                raise self.var_value_error(
                    f"must be at most {MAX_AMOUNT:.0e}, got {_show_amount(cpus)}", name, source, key="cpus"
                )
            spec.cpus = cpus
        env = body.get("env", {})
        if not isinstance(env, dict):
            raise self.error("must be a table of environment variables", name, "env")
        for key, value in env.items():
            if not key or "=" in key or "\0" in key:
                raise self.error(
                    f"{key!r} is not a valid environment variable name",
                    name,
                    "env",
                    hint="a name must be non-empty and hold no '=' or NUL character",
                )
            if isinstance(value, bool):
                value = "1" if value else "0"
            if not isinstance(value, (str, int, float)):
                raise self.error(f"value of '{key}' must be a string or number", name, "env")
            if isinstance(value, float) and not math.isfinite(value):
                raise self.error(f"value of '{key}' is {value}: nan and inf cannot be put in an environment", name, "env")
            if isinstance(value, str) and "\0" in value:
                raise self.error(f"value of '{key}' contains a NUL character", name, "env", hint=_NUL_HINT)
            spec.env[key] = str(value)
        retries = body.get("retries")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
            raise self.error(f"must be a non-negative integer, got {_shown(retries)}", name, "retries")
        spec.retries = retries
        for key in ("retry_delay", "timeout"):
            if key in body:
                try:
                    seconds = parse_duration(body[key])
                except ValueError as exc:
                    raise self.error(str(exc), name, key) from None
                setattr(spec, key, seconds)
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise self.error("must be a string", name, "description")
        spec.description = description
        if "temp" in body:
            spec.temp = self.temp_outputs(body["temp"], spec, variables)
        if "log" in body:
            spec.log = self.log_path(body["log"], spec, variables, used, output_wildcards)
        if "order_only" in body:
            spec.order_only = self.order_only_paths(body["order_only"], spec, variables, spec.wildcard_names)
        depfile = body.get("depfile")
        if depfile is not None:
            if not isinstance(depfile, str) or not depfile.strip():
                raise self.error(
                    f"must be a path such as \"{{outputs[0]}}.d\", got {_type_name(depfile) if not isinstance(depfile, str) else 'an empty string'}",
                    name,
                    "depfile",
                )
            if "\0" in depfile:
                raise self.error("contains a NUL character", name, "depfile")
            spec.depfile = depfile
        if cmd is not None:
            spec.cmd_template = self.template(cmd, spec, variables, "cmd", used)
            for key, value in spec.env.items():
                spec.env_templates[key] = self.template(value, spec, variables, "env", used)
            if spec.depfile is not None:
                spec.depfile_template = self.template(spec.depfile, spec, variables, "depfile", used)
        spec.vars_used = tuple(sorted(set(used))) if used else ()
        return spec

    def template(
        self, text: str, spec: RuleSpec, variables: Dict[str, Any], key: str, used: List[str]
    ) -> Template:
        parts: List[Union[str, Placeholder]] = []
        shape = self._shapes.get(text)
        if shape is None:  # most rules share a few command texts: split each once
            shape = self._shapes[text] = _template_shape(text)
        for kind, value in shape:
            if kind is _LITERAL:
                parts.append(value)
                continue
            if kind is _SHELL_BRACES:
                # `${HOME}`, as a shell writes it: the braces are weave's placeholder syntax.
                simple = f" or ${value}" if NAME_RE.match(value) else ""
                raise self.error(
                    f"'${{{value}}}': braces are weave's placeholders",
                    spec.name,
                    key,
                    hint=f"write ${{{{{value}}}}}{simple} for the shell's (or environment's) ${{{value}}}",
                )
            if kind is _UNBALANCED:
                nested = _nested_placeholder(text)
                if nested is not None:
                    raise self.error(f"'{nested}': a placeholder cannot hold another", spec.name, key, hint=_NESTED_HINT)
                raise self.error(
                    "unbalanced brace" + (" in command" if key == "cmd" else f" in '{text}'"),
                    spec.name,
                    key,
                    hint="write {{ and }} for literal braces",
                )
            placeholder = self.placeholder(value, spec, variables, key)
            if placeholder.kind == "vars":
                if isinstance(placeholder.index, str):
                    lookup = (placeholder.attr or "", placeholder.index)
                    if all(known[:2] != lookup for known in spec.var_lookups):
                        spec.var_lookups += (lookup + (key,),)
                else:
                    used.append(placeholder.attr or "")
            parts.append(placeholder)
        return tuple(parts)

    def placeholder(self, body: str, spec: RuleSpec, variables: Dict[str, Any], key: str) -> Placeholder:
        parsed = self._placeholders.get(body)
        if parsed is None:  # the same few placeholders recur in every rule: parse each once
            match = _PLACEHOLDER_RE.match(body)
            number = match.group("index") or match.group("attr_index") if match else None
            lookup = match.group("lookup") if match else None
            parsed = (
                (
                    match.group("kind"),
                    lookup if lookup is not None else None if number is None else _index(number),
                    match.group("attr"),
                )
                if match
                else (None, None, None)
            )
            self._placeholders[body] = parsed
        kind, index, attr = parsed
        if kind is None and body.startswith("vars.") and body.count(".") == 2:
            name, _, field = body[len("vars.") :].partition(".")
            value = variables.get(name)
            if isinstance(value, dict):  # `{vars.prepare.split}`: params.yaml's habit
                raise self.error(
                    f"'{{{body}}}': a table var's values are looked up by a wildcard's value"
                    f" ({{vars.{name}[wildcards.NAME]}}), not by a fixed key",
                    spec.name,
                    key,
                    hint=f"vars are not nested otherwise: write {name}_{field} = ... under [vars] and use"
                    f" {{vars.{name}_{field}}}",
                )
        if isinstance(index, str) and kind != "vars":  # [wildcards.NAME] looks up a var table
            raise self.error(
                f"'{{{body}}}': only a var takes [wildcards.NAME] (a lookup in a table var)",
                spec.name,
                key,
                hint="e.g. {vars.adapters[wildcards.sample]}, with [vars.adapters] mapping samples to values",
            )
        if kind is None or kind not in PLACEHOLDER_KINDS:
            matched = kind is not None
            kind = kind if matched else body
            hint = _did_you_mean(kind, PLACEHOLDER_KINDS) if matched else None
            if matched and kind in spec.wildcard_regex:
                hint = f"write {{wildcards.{kind}}}"
            raise self.error(
                f"unknown placeholder '{{{body}}}'",
                spec.name,
                key,
                hint=hint
                or "valid: {inputs} {outputs} {inputs[0]} {inputs[1:]} {inputs.NAME} {wildcards.NAME} {vars.NAME} {resources.NAME} {rule} {cpus} {log}; {{ }} for literal braces",
            )
        if kind in ("inputs", "outputs"):
            items = spec.inputs if kind == "inputs" else spec.outputs
            names = spec.input_names if kind == "inputs" else spec.output_names
            if attr is not None and attr not in names:
                raise self.error(
                    f"'{{{body}}}': no {kind[:-1]} named '{attr}'",
                    spec.name,
                    key,
                    hint=_did_you_mean(attr, list(names)) or f"name {kind} with a table: {kind} = {{ {attr} = \"path\" }}",
                )
            if attr is not None:
                items = [items[i] for i in names[attr]]  # {inputs.NAME[i]}: within the group
            if (
                isinstance(index, int)  # (a slice is never out of range: it may be empty)
                and not (-len(items) <= index < len(items))
                # inputs that expand (globs, foreach) have a length known only per job
                and not (kind == "inputs" and (bool(spec.foreach) or any(not GLOB_CHARS.isdisjoint(i) for i in items)))
            ):
                raise self.error(
                    f"'{{{body}}}' is out of range: the rule has {len(items)} {kind}"
                    + (f" named '{attr}'" if attr is not None else ""),
                    spec.name,
                    key,
                )
        elif kind in ("wildcards", "vars", "resources"):
            if attr is None:
                raise self.error(f"'{{{body}}}' needs a name: {{{kind}.NAME}}", spec.name, key)
            if index is not None and not isinstance(index, str):
                raise self.error(f"'{{{body}}}' takes no index", spec.name, key)
            if kind == "vars":
                value = self.var_value(attr, variables, spec.name, key, [])  # template() records its use
                if key == "depfile" and isinstance(value, list):
                    raise self.error(
                        f"'{{{body}}}' is a list; a depfile is one path",
                        spec.name,
                        key,
                        hint="name it after the job's own output, e.g. depfile = \"{outputs[0]}.d\"",
                    )
                if isinstance(value, dict) and index is None:
                    raise self.error(
                        f"'{{{body}}}' is a table var: a command takes one of its values",
                        spec.name,
                        key,
                        hint=f"look one up by a wildcard's value: {{vars.{attr}[wildcards.NAME]}}",
                    )
                if isinstance(index, str):
                    if not isinstance(value, dict):
                        raise self.error(
                            f"'{{{body}}}': var '{attr}' is {_type_name(value)}, not a table to look up",
                            spec.name,
                            key,
                            hint=f"write {{vars.{attr}}}, or make it a table: [vars.{attr}] with a line per value of {index}",
                        )
                    if index not in spec.wildcard_regex:
                        raise self.error(
                            f"'{{{body}}}': no wildcard '{index}' in this rule",
                            spec.name,
                            key,
                            hint=_did_you_mean(index, list(spec.wildcard_regex))
                            or (f"this rule's wildcards: {', '.join(spec.wildcard_regex)}" if spec.wildcard_regex else "this rule has no wildcards"),
                        )
            else:
                known = spec.wildcard_regex if kind == "wildcards" else spec.resources
                if attr not in known:
                    raise self.error(
                        f"unknown placeholder '{{{body}}}': no {kind[:-1]} '{attr}' in this rule",
                        spec.name,
                        key,
                        hint=_did_you_mean(attr, list(known))
                        or (f"this rule's {kind}: {', '.join(known)}" if known else f"this rule has no {kind}"),
                    )
        elif index is not None or attr is not None:
            raise self.error(f"'{{{kind}}}' takes no index or name", spec.name, key)
        elif kind == "log" and spec.log is None:
            raise self.error(
                "'{log}': this rule has no log", spec.name, key, hint="name the file with the rule's log key, e.g. log = \"logs/train.log\" (\"logs/map/{sample}.log\" with the outputs' wildcards)"
            )
        return Placeholder(kind, index, attr, "{" + body + "}")

    def check_unique_outputs(self, rules: Dict[str, RuleSpec], weavefiles: Collection[str]) -> None:
        """Outputs without wildcards: none is weave's own (the project directory, the Weavefile
        and the files it includes, .weave/), no two rules make the same one, and none lies
        inside a directory output. Outputs with wildcards are checked for each job, when their
        values are known."""
        seen: Dict[str, str] = {}
        static: List[Tuple[str, str, str]] = []  # (rule, output as written, normalised)
        budget = 20_000  # listed outputs of pattern rules expanded, at most
        for rule in rules.values():
            if len(rule.outputs) > 1:
                mine: Dict[str, str] = {}
                for output in rule.outputs:
                    key = normalize(unescape(output)).rstrip("/")
                    if key in mine:
                        raise self.error(
                            f"output '{output}' is listed twice (also as '{mine[key]}')",
                            rule.name,
                            "outputs",
                            hint="list each output once",
                        )
                    mine[key] = output
            if any(wildcard_names_in(output) for output in rule.outputs):
                # Pattern outputs are checked when they are matched; those whose every
                # wildcard takes a listed foreach value are known now, for the nesting check
                # (up to a budget: a million of them would cost seconds at every load).
                listed = _listed_outputs(rule, budget)
                budget -= len(listed)
                static.extend(listed)
                continue
            for output in rule.outputs:
                key = normalize(unescape(output)).rstrip("/")
                protected = protected_output(key, weavefiles)
                if protected:
                    raise self.error(
                        f"output '{output}' {protected}",
                        rule.name,
                        "outputs",
                        hint="a job may not write it, and weave never deletes it: "
                        "name a file or directory inside the project"
                        + (" (check the vars it uses, and --set values)" if self.overridden else ""),
                    )
                if key in seen and seen[key] != rule.name:
                    raise self.error(
                        f"output '{output}' is also produced by rule '{seen[key]}'",
                        rule.name,
                        "outputs",
                        hint="each file must be made by exactly one rule",
                    )
                seen[key] = rule.name
                static.append((rule.name, output, key))
        self.check_output_nesting(static)
        if any(rule.log is not None for rule in rules.values()):
            self.check_logs(rules, static)

    def check_logs(self, rules: Dict[str, RuleSpec], static: List[Tuple[str, str, str]]) -> None:
        """What the graph checks among one build's jobs (graph._check_logs), checked across
        all the rules where the Weavefile alone tells: no log may be another rule's exact
        output, lie inside a directory output or a directory input, or be what a written
        input or an input glob names (a job would read it, in a later build if not this one,
        or its directory would be emptied)."""
        logs = [_LogPaths(rule) for rule in rules.values() if rule.log is not None]
        hint = "keep logs in a directory of their own that no input, glob or output covers, e.g. logs/"
        for owner, output, key in static:
            for log in logs:
                rule = log.rule
                if output.endswith("/"):
                    if log.within(key):
                        raise self.error(
                            f"log '{rule.log}' is inside directory output '{output}' of rule '{owner}'", rule.name, "log", hint=hint
                        )
                elif log.names(key):
                    what = "is" if "{" not in (rule.log or "") else f"can name '{output}',"
                    raise self.error(f"log '{rule.log}' {what} an output of rule '{owner}'", rule.name, "log", hint=hint)
        for reader in rules.values():
            for written in reader.inputs:
                if "{" in written:
                    continue  # a pattern's paths are known per job: the graph checks those
                key = normalize(unescape(written)).rstrip("/")
                for log in logs:
                    if has_glob(written):  # the log, or a directory holding it (read whole)
                        read = any(glob_matches(key, path) for path in log.holders())
                    else:
                        read = log.names(key) or log.within(key)
                    if read:
                        raise self.error(
                            f"log '{log.rule.log}' would be read by rule '{reader.name}' (its input '{written}'), which"
                            " would not wait for it: a file other jobs read is an output",
                            log.rule.name,
                            "log",
                            hint=hint,
                        )

    def check_output_nesting(self, static: List[Tuple[str, str, str]]) -> None:
        """No output lies inside a directory output (`o/`): that rule would own its file; nor
        inside a file output (`o` and `o/x`: one of them cannot be made). In file order, so the
        error names the later rule; one lookup per output and per directory above it, never a
        comparison of every pair."""
        dirs: Dict[str, Tuple[str, str]] = {}  # directory output -> (rule, output as written)
        files: Dict[str, Tuple[str, str]] = {}  # file output -> (rule, output as written)
        above: Dict[str, Tuple[str, str]] = {}  # a directory above outputs -> the first (rule, output)
        hint = "a directory output holds everything in it: list only the directory, or put the file elsewhere"
        for rule, output, key in static:
            parent = key
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                if parent in dirs:
                    owner, directory = dirs[parent]
                    raise self.error(
                        f"output '{output}' is inside directory output '{directory}' of rule '{owner}'",
                        rule,
                        "outputs",
                        hint=hint,
                    )
                if parent in files:
                    owner, file_output = files[parent]
                    raise self.error(
                        f"output '{output}' is inside '{file_output}', a file output of rule '{owner}'",
                        rule,
                        "outputs",
                        hint=_FILE_HOLDS_HINT,
                    )
                above.setdefault(parent, (rule, output))
            if key in above:
                owner, inner = above[key]
                raise self.error(
                    f"directory output '{output}' contains output '{inner}' of rule '{owner}'"
                    if output.endswith("/")
                    else f"file output '{output}' is the directory of output '{inner}' of rule '{owner}'",
                    rule,
                    "outputs",
                    hint=hint if output.endswith("/") else _FILE_HOLDS_HINT,
                )
            if output.endswith("/"):
                dirs.setdefault(key, (rule, output))
            else:
                files.setdefault(key, (rule, output))
