"""The reference in docs/ covers the public API: `mkdocs build --strict`
(the docs step of .ci/run) and an entry for every public attribute and method
of the handler, the client and the Session."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

from nghttp2.client import Client, Response
from nghttp2.server import BaseRequestHandler
from nghttp2_cffi import Session

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="mkdocs and mkdocstrings are the docs extra (pip install -e '.[docs]')",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def public(cls: type, *instance_attributes: str) -> Set[str]:
    names = {name for name in vars(cls) if not name.startswith("_")}
    return names | set(instance_attributes)


def documented(site: Path, page: str, qualname: str) -> Set[str]:
    html = (site / page / "index.html").read_text(encoding="utf-8")
    return set(re.findall(rf'id="{re.escape(qualname)}\.(\w+)"', html))


def test_handler_reference_lists_every_attribute_and_method(site: Path) -> None:
    expected = public(BaseRequestHandler, "headers", "http2", "stream_id", "remote_address")
    assert {"on_headers", "send_response", "push", "read_body", "path"} <= expected
    missing = expected - documented(site, "handler", "nghttp2.server.handler.BaseRequestHandler")
    assert not missing


def test_client_and_session_references(site: Path) -> None:
    assert not public(Client) - documented(site, "client", "nghttp2.client.client.Client")
    assert not public(Response) - documented(site, "client", "nghttp2.client.response.Response")
    assert not public(Session) - documented(site, "session", "nghttp2_cffi.session.Session")


def test_performance_tables_moved_to_docs(site: Path) -> None:
    page = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    assert "## Server benchmark" in page and "## Protocol benchmark" in page
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## Server benchmark" not in readme
    assert "docs/performance.md" in readme
    assert (site / "performance" / "index.html").exists()
