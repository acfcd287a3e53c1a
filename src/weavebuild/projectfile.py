"""Where a project's Weavefile is and what identifies it (its bytes with any `--set` values):
what every command needs before anything is parsed, so kept apart from the parser (manifest.py),
which a no-op build never loads."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import List, Mapping, Optional, Sequence, Tuple

MANIFEST_NAMES = ("Weavefile", "weave.toml")

# The directory weave was started in, when `-C DIR` moved it elsewhere (set by the CLI): a hint
# that names another directory gives it relative to where the user typed the command.
launched_in: Optional[str] = None


def find_manifest(directory: str) -> Optional[str]:
    """The Weavefile in `directory`, if any (`Weavefile` first, then `weave.toml`)."""
    for name in MANIFEST_NAMES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def shadowed_manifest(directory: str) -> Optional[str]:
    """The second Weavefile name in `directory` when both are there (`weave.toml`, which
    find_manifest passes over for `Weavefile`), else None: a user editing it would see no
    effect without being told. Not when the Weavefile names it (it includes it, most likely)."""
    first, second = (os.path.join(directory, name) for name in MANIFEST_NAMES)
    if not (os.path.isfile(second) and os.path.isfile(first)):  # (rarely a second: one stat)
        return None
    try:
        named = os.path.basename(second).encode() in read_regular_file(first)
    except OSError:
        named = False
    return None if named else second


def read_regular_file(path: str) -> bytes:
    """The bytes of the Weavefile, an included file or one of weave's own files in .weave/ at
    `path`; anything but a regular file raises OSError: reading a FIFO would wait for a
    writer forever (deaf to SIGTERM: the open is retried after each signal), a device such
    as /dev/zero never ends (why_not_a_file says what it is)."""
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return handle.read()


def why_not_a_file(path: str) -> str:
    """Why `path` cannot be read as a Weavefile (it is no regular file), in words."""
    import errno
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        if not os.path.lexists(path):
            return "not found"
        return "is a symlink loop" if exc.errno == errno.ELOOP else "is a broken symlink"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    return "is not a regular file"


def overrides_key(overrides: Optional[Mapping[str, str]]) -> bytes:
    """The bytes that `--set` values add to a Weavefile's digest (none without overrides), so
    that graphs, caches and no-op stamps of different overrides never stand in for each other."""
    if not overrides:
        return b""
    return b"\0--set\0" + "\0".join(f"{name}={overrides[name]}" for name in sorted(overrides)).encode()


# Which files each version of a Weavefile includes, as parses found them: {digest of the
# including file's bytes: [included paths]}. It lets a build identify a project whose
# Weavefile includes others without parsing anything (the included bytes are part of its
# digest); a version never parsed, or a file that cannot be read, means: parse.
INCLUDES_NAME = os.path.join(".weave", "includes")
INCLUDES_KEPT = 1000  # versions of files (a project may hold hundreds that say "include")
INCLUDE_WORD = b"include"


def project_digest(raw: bytes, included: Sequence[Tuple[str, bytes]], overrides: Optional[Mapping[str, str]]) -> str:
    """What identifies a project's rules: the Weavefile's bytes, the path and bytes of every
    file it includes, and the `--set` values. A Weavefile that includes nothing keeps the
    digest of its bytes alone."""
    from .hashing import digest_bytes

    data = raw
    for path, content in included:
        data += b"\0--include\0" + path.encode() + b"\0" + digest_bytes(content).encode()
    return digest_bytes(data + overrides_key(overrides))


def known_includes(root: str, raw: bytes) -> Optional[List[Tuple[str, bytes]]]:
    """The files the Weavefile `raw` includes (directly or through other included files),
    with their bytes, in the parser's order (depth first): [] when it includes none, None
    when that is not known without parsing it (a version never parsed, or a file gone)."""
    if INCLUDE_WORD not in raw:
        return []  # the parser refuses an `include` key that is not spelled out
    from .hashing import digest_bytes

    memo = _read_memo(root)
    found: List[Tuple[str, bytes]] = []
    seen = set()

    def walk(content: bytes) -> bool:
        if INCLUDE_WORD not in content:
            return True
        names = memo.get(digest_bytes(content))
        if not isinstance(names, list):
            return False
        for name in names:
            if not isinstance(name, str) or name in seen:
                return False  # the parser reports it
            seen.add(name)
            try:
                data = read_regular_file(os.path.join(root, name))
            except OSError:
                return False
            found.append((name, data))
            if not walk(data):
                return False
        return True

    return found if walk(raw) else None


def remember_includes(root: str, lists: Sequence[Tuple[bytes, List[str]]]) -> None:
    """Keep, for each (file bytes, paths it includes) a parse found, the paths under the
    digest of the bytes (best effort: a build that cannot write it parses next time; none
    before .weave/ exists)."""
    if not lists or not os.path.isdir(os.path.join(root, ".weave")):
        return
    import json

    from .hashing import digest_bytes

    memo = _read_memo(root)
    changed = False
    for content, names in lists:
        key = digest_bytes(content)
        if memo.get(key) != names:
            memo.pop(key, None)
            memo[key] = list(names)
            changed = True
    if not changed:
        return
    while len(memo) > INCLUDES_KEPT:
        memo.pop(next(iter(memo)))
    from .paths import replace_file

    replace_file(os.path.join(root, INCLUDES_NAME), json.dumps(memo).encode())


def _read_memo(root: str) -> dict:
    import json

    try:
        memo = json.loads(read_regular_file(os.path.join(root, INCLUDES_NAME)))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}
