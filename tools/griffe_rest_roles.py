"""A griffe extension for the docs build (mkdocs.yml): the docstrings name
other objects with reST roles (:meth:`send_response`, :class:`~x.Y`), which
mkdocstrings would print as they are; this turns them into code spans."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const|ref):`~?(?:[^`<]*<)?([^`>]+)>?`"
)


def _code(match: re.Match[str]) -> str:
    name = match[1]
    if match[0].startswith((":meth:", ":func:", ":py:meth:", ":py:func:")):
        name += "()"
    return f"`{name}`"


class ReSTRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)
