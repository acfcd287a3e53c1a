"""Where a project's Weavefile is and what identifies it (its bytes with any `--set` values):
what every command needs before anything is parsed, so kept apart from the parser (manifest.py),
which a no-op build never loads."""

from __future__ import annotations

import os
from typing import Mapping, Optional

MANIFEST_NAMES = ("Weavefile", "weave.toml")


def find_manifest(directory: str) -> Optional[str]:
    """The Weavefile in `directory`, if any (`Weavefile` first, then `weave.toml`)."""
    for name in MANIFEST_NAMES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


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
