"""Depfiles: the files a command says it read, in make's syntax, as `cc -MMD -MF out.d` writes
them (and Ninja's `depfile`). A rule's `depfile` names where its command writes one; after a
successful run the builder reads it, and the files it lists (a C file's headers) join the
job's record with their digests: the job is stale when one of them changes, as when a declared
input does. Only this parser lives here; the builder and scanner do the rest.

The syntax read: `targets: prerequisites`, lines continued with a backslash, several rules
(`-MP` adds an empty rule per header), `\\ ` and `\\#` for a space or `#` in a name, `$$` for
`$`, other backslashes as they are (a name holding `\\\\` keeps both, as gcc writes it).
Targets are ignored (a compiler names its output; what matters is what it read).
"""

from __future__ import annotations

import os

from .paths import normalize, project_spellings

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import List, Sequence


class DepfileError(ValueError):
    """A depfile that does not read as make's syntax."""


def parse(text: str) -> List[str]:
    """The prerequisites a depfile lists, in order, each once."""
    found: List[str] = []
    seen = set()
    logical = text.replace("\\\r\n", " ").replace("\\\n", " ")
    for number, line in enumerate(logical.splitlines(), 1):
        words = _words(line)
        if not words:
            continue
        colon = next((index for index, (word, ends) in enumerate(words) if ends), None)
        if colon is None:
            raise DepfileError(f"line {number}: no ':' after the target")
        for word, _ in words[colon + 1 :]:
            if word and word not in seen:
                seen.add(word)
                found.append(word)
    return found


def _words(line: str) -> List[tuple]:
    """The words of a logical line, unescaped, each with whether a target list ends with it
    (its ':' seen). A '#' that is not escaped starts a comment."""
    words: List[tuple] = []
    word: List[str] = []
    index = 0
    ended = False  # the ':' has been seen

    def finish(colon: bool) -> None:
        if word or colon:
            words.append(("".join(word), colon))
        word.clear()

    while index < len(line):
        char = line[index]
        if char == "\\":
            # As gcc writes them and Ninja reads them: before a space, '#' or ':', 2N+1
            # backslashes are N backslashes and the character itself (2N: N, and the
            # character keeps its meaning); anywhere else a backslash is itself, so a name
            # holding `\\` keeps both.
            end = index
            while end < len(line) and line[end] == "\\":
                end += 1
            run = end - index
            follower = line[end : end + 1]
            if follower and follower in " \t#:":
                word.append("\\" * (run // 2))
                if run % 2:
                    word.append(follower)
                    end += 1
                index = end
                continue
            if not follower:  # a continuation at the very end of the file
                word.append("\\" * (run - 1))
                break
            word.append("\\" * run)
            index = end
            continue
        if char == "$" and line[index + 1 : index + 2] == "$":
            word.append("$")
            index += 2
            continue
        if char == "#":
            break
        if char in " \t":
            finish(False)
        elif char == ":" and not ended and (index + 1 == len(line) or line[index + 1] in " \t"):
            finish(True)
            ended = True
        else:
            word.append(char)
        index += 1
    finish(False)
    return words


def project_paths(listed: Sequence[str], root: str, skip: Sequence[str]) -> List[str]:
    """The listed files as weave names them: relative to the project directory when inside
    it (however the command spelled them: `src/a.h`, `../proj/src/a.h`, an absolute path,
    one through a symlink to the project), absolute otherwise (a system header); without
    those in `skip` (the job's declared inputs and outputs), the project directory itself
    and weave's own `.weave/`."""
    roots = [os.path.join(spelling, "") for spelling in project_spellings(root)]
    skipped = set(skip)
    paths: List[str] = []
    for item in listed:
        full = os.path.normpath(item if os.path.isabs(item) else os.path.join(root, item))
        inside = next((prefix for prefix in roots if (full + os.sep).startswith(prefix)), None)
        if inside is None:
            real_full = os.path.realpath(full)  # a path through a symlink into the project
            inside = next((prefix for prefix in roots if (real_full + os.sep).startswith(prefix)), None)
            if inside is not None:
                full = real_full
        path = normalize(full[len(inside) :] or ".") if inside is not None else full
        if path in skipped or path == "." or path == ".weave" or path.startswith(".weave/"):
            continue
        if inside is None and os.path.isdir(full):
            continue  # a directory outside the project (`/`): what it holds is no file it read
        skipped.add(path)
        paths.append(path)
    return paths
