"""The exception hierarchy: every error Weave reports to a user is a WeaveError; and the
helpers its messages share (a long value shortened, the closest choice to a typo).

User mistakes (bad Weavefile, unknown target, cycle, bad option) are `UsageError`s and end with
exit code 2; a job that fails is a `BuildFailed` (exit 1). The CLI turns these into
`weave: error: ...` lines; nothing here prints.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, Optional, Sequence


# A word longer than this in an error message (a 5,000-character target or --set value typed
# or pasted by mistake) is shown shortened in the middle: the message stays a few lines.
LONG_WORD = 300


def clip_long_words(text: str) -> str:
    """`text` with every run of more than LONG_WORD non-blank characters shortened in the
    middle, saying how long it was."""
    if len(text) <= LONG_WORD:
        return text
    import re  # only on the error path

    return re.sub(r"\S{" + str(LONG_WORD + 1) + ",}", lambda match: clip(match.group(0), 260), text)


def clip(text: str, limit: int = 80) -> str:
    """A value the user typed, as a message repeats it: long ones shortened in the middle."""
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2 :]} ({len(text):,} characters)"


# Past this many choices, a did-you-mean compares the word with its neighbours only (below).
SUGGEST_SCAN = 2000
SUGGEST_NEIGHBOURS = 100


def closest(word: str, choices: Sequence[str], cutoff: float = 0.6) -> Optional[str]:
    """The choice closest to `word` (a mistyped target, rule or key), or None if none is close.
    difflib compares the word with every choice, ~50 µs each: a typo among 100k outputs took
    5 s to report. A close match shares a long prefix or a long suffix with the word, so with
    many choices only its neighbours in sorted order, forwards and backwards, are compared."""
    import difflib
    from bisect import bisect_left

    candidates = list(choices)
    same = _same_text(word, candidates)
    if same is not None:
        return same
    if len(candidates) > SUGGEST_SCAN:
        near: Dict[str, None] = {}  # ordered, without repeats
        for key in (None, _reversed):
            ordered = sorted(candidates, key=key)
            keys = ordered if key is None else [_reversed(choice) for choice in ordered]
            at = bisect_left(keys, word if key is None else _reversed(word))
            near.update(dict.fromkeys(ordered[max(0, at - SUGGEST_NEIGHBOURS) : at + SUGGEST_NEIGHBOURS]))
        candidates = list(near)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    return close[0] if close else None


def _reversed(text: str) -> str:
    return text[::-1]


def _same_text(word: str, choices: Sequence[str]) -> Optional[str]:
    """A choice that is `word` in another Unicode normalization (é as one code point, NFC,
    or as e and a combining accent, NFD, as macOS names files): the same text to a reader,
    another name to a file system and to weave. Closer than any typo."""
    import unicodedata

    wanted = unicodedata.normalize("NFC", word)
    for choice in choices:
        if (not choice.isascii() or not word.isascii()) and choice != word:
            if unicodedata.normalize("NFC", choice) == wanted:
                return choice
    return None


def did_you_mean(word: str, close: str) -> str:
    """The hint that `word` was perhaps meant as `close`; where the two look alike because
    they differ only in Unicode normalization, it says so, with both escaped to tell them
    apart."""
    import unicodedata

    if close == word or unicodedata.normalize("NFC", close) != unicodedata.normalize("NFC", word):
        return f"did you mean '{close}'?"
    return (
        f"did you mean '{_escaped(close)}' ({_form(close)})? It is written '{_escaped(word)}' ({_form(word)}):"
        " the names differ only in Unicode normalization, which the file system does not ignore."
    )


def _escaped(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _form(text: str) -> str:
    import unicodedata

    for form in ("NFC", "NFD"):
        if unicodedata.is_normalized(form, text):
            return form
    return "neither NFC nor NFD"


class WeaveError(Exception):
    """Base of all errors Weave reports to its user."""

    exit_code = 2

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(WeaveError):
    """A mistake the user can fix: bad option, unknown target, missing source (exit 2)."""


class MissingSource(UsageError):
    """An input no rule makes does not exist; `path` is it, project-relative (watch mode
    watches for it to appear)."""

    def __init__(self, path: str, needed_by: str, hint: Optional[str] = None, where: Optional[str] = None):
        """`where`: the file and line that name it (`./Weavefile:9`), if known."""
        super().__init__(
            (f"{where}: " if where else "") + f"missing source '{path}' needed by {needed_by}",
            hint=hint or "create the file, or add a rule that makes it",
        )
        self.path = path


class ManifestError(UsageError):
    """An invalid Weavefile; carries the file, line, rule and key it concerns when known."""

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        col: Optional[int] = None,
        rule: Optional[str] = None,
        key: Optional[str] = None,
        hint: Optional[str] = None,
    ):
        self.path, self.line, self.col, self.rule, self.key = path, line, col, rule, key
        self.detail = message  # without the place
        where = path or "Weavefile"
        if line is not None:
            where += f":{line}"
            if col is not None:
                where += f":{col}"
        subject = ""
        if rule is not None:
            subject = f"rule '{rule}'"
            if key is not None:
                subject += f", key '{key}'"
            subject += ": "
        elif key is not None:
            subject = f"key '{key}': "
        super().__init__(f"{where}: {subject}{message}", hint)


class CycleError(UsageError):
    """The job graph has a cycle; `cycle` is the list of rule/job names along it."""

    def __init__(self, cycle: Sequence[str], where: Sequence[str] = ()):
        self.cycle = list(cycle)
        shown = self.cycle
        if len(shown) > 12:  # the start and the way back to it
            shown = shown[:10] + [f"... ({len(shown) - 12:,} more)"] + shown[-2:]
        # `where`: "'rule' (./Weavefile:12)" for each rule along the cycle, when known.
        super().__init__(
            "dependency cycle: " + " -> ".join(shown),
            hint="an output cannot (indirectly) be an input of the rule that makes it"
            + (f"; the rules on it: {', '.join(where)}" if where else ""),
        )


def set_value_error(var: str, given: str, rule: str, key: str, message: str, hint: Optional[str] = None) -> UsageError:
    """A mistake that the value `--set VAR=GIVEN` causes at `key` of `rule`: named by the
    --set, not by the Weavefile's line (which holds another value)."""
    return UsageError(f"--set {var}={clip(given)}: rule '{rule}', key '{key}': {message}", hint=hint)


class LockedError(UsageError):
    """Another weave process holds the project's build lock."""


class StoreError(WeaveError):
    """The state store could not be used (and could not be rebuilt)."""


class BuildFailed(WeaveError):
    """One or more jobs failed; the details were already reported as they happened."""

    exit_code = 1

    def __init__(self, message: str, failed: Sequence[str] = ()):
        super().__init__(message)
        self.failed = list(failed)


class Interrupted(WeaveError):
    """The build was stopped by SIGINT/SIGTERM/SIGHUP/SIGQUIT; exit code 130, 143, 129 or 131.

    `requested`: stopped on request (the `stop` event of Project.build, set by a caller of
    the Python API) and by no signal."""

    def __init__(self, signum: int, requested: bool = False):
        self.signum = signum
        self.requested = requested
        self.exit_code = 128 + signum
        super().__init__("stopped on request" if requested else f"interrupted by {signal_name(signum)}")


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15. The four that stop a build are named without importing `signal`: a
    signal can arrive while Python imports that module (weave's handler is installed through
    `_signal`), and a half-imported `signal` has no `Signals` yet."""
    import _signal

    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
        if getattr(_signal, name, None) == signum:
            return name
    import signal

    return signal.Signals(signum).name


def environment_error(exc: OSError) -> WeaveError:
    """A UsageError for `exc`, an OSError about a path weave needed, with what to do."""
    import errno
    import os

    path = os.fsdecode(exc.filename)
    shown = os.path.relpath(path) if os.path.isabs(path) and not os.path.relpath(path).startswith("..") else path
    what = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "check the permissions of that path (weave writes its state in .weave/ in the project directory)"
    elif exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EINVAL, errno.ENXIO):
        # (EINVAL, ENXIO: a FIFO or device there, where weave keeps a file)
        hint = "something else is in the way there; if it is in .weave/, remove it (weave makes its own files again)"
    elif exc.errno == errno.ENOSPC:
        hint = "free some space on that file system"
    else:
        hint = None
    return UsageError(f"cannot use '{shown}': {what}", hint=hint)
