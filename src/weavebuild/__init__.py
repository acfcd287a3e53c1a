"""Weave: a make-style build tool for data and ML pipelines, with content-hash staleness.

Public API: `Project.load(path).build(targets, jobs=...)`. Heavy modules are imported lazily so
that `weave --version` stays fast.
"""

from __future__ import annotations

from ._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .api import Project

__all__ = ["Project", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from .api import Project

        return Project
    raise AttributeError(name)
