"""Every ```python block of README.md runs as written.

A block runs as a program (from the repository's top folder, as the README's
commands do) and must exit 0.  An HTML comment on the line before a block
tells this test how to run it; the block itself stays as written:

- ``<!-- readme-test: serve port=8080 expect="text" -->``: the block serves
  forever on that port; it is started (on a free port instead), asked for
  ``/`` over h2c by curl (HTTP/2, and ``text`` in the body if given), stopped.
- ``<!-- readme-test: asgi app expect="text" -->``: the block is an ASGI
  module; ``python -m nghttp2 --asgi module:app --no-tls`` serves it, then
  the same request as above.
- ``<!-- readme-test: client-of COMMAND -->``: COMMAND (``python ...
  --port N``) is started first, then the block runs against it.
- ``needs=MODULE`` skips the block where MODULE cannot be imported.

Shell commands are indented or fenced as ```sh: not run here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
from net_support import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
KINDS = ("run", "serve", "asgi", "client-of")
TIMEOUT = 90.0  # seconds for one block (the machine is shared and busy)

_BLOCK = re.compile(
    r"(?:^<!-- readme-test: (?P<hint>.*?) -->\n)?^```python\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)


@dataclass
class Block:
    line: int
    code: str
    kind: str = "run"
    options: Dict[str, str] = field(default_factory=dict)
    command: List[str] = field(default_factory=list)


def parse_readme(text: str) -> List[Block]:
    blocks = []
    for match in _BLOCK.finditer(text):
        block = Block(line=text.count("\n", 0, match.start("code")), code=match["code"])
        if match["hint"]:
            words = shlex.split(match["hint"])
            block.kind = words.pop(0)
            assert block.kind in KINDS, f"README.md:{block.line}: unknown hint {block.kind!r}"
            if block.kind == "client-of":
                block.command = words
            else:
                for word in words:
                    key, sep, value = word.partition("=")
                    block.options[key] = value if sep else ""
        blocks.append(block)
    return blocks


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))


def test_readme_has_its_examples() -> None:
    # The pattern found them all: every ```python fence is one block.
    assert len(BLOCKS) == README.read_text(encoding="utf-8").count("```python\n")
    assert len(BLOCKS) >= 8
    assert {b.kind for b in BLOCKS} == set(KINDS)


def _env() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _start(args: List[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


@pytest.fixture
def started() -> Iterator[List[subprocess.Popen[str]]]:
    procs: List[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            _stop(proc)


def _get(port: int, expect: Optional[str]) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (tools/setup.sh installs it)")
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "30",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    body, _, version = out.rpartition("\n")
    assert version == "2"
    if expect:
        assert expect in body


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}-{b.kind}" for b in BLOCKS])
def test_readme_block_runs(
    block: Block, tmp_path: Path, started: List[subprocess.Popen[str]]
) -> None:
    needs = block.options.get("needs")
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed (the test extra installs it on CPython)")
    code = block.code
    if block.kind == "run":
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, f"README.md:{block.line}:\n{proc.stdout}\n{proc.stderr}"
        return

    port = free_port()
    if block.kind == "serve":
        written = block.options["port"]
        assert written in code
        server = _start([sys.executable, "-c", code.replace(written, str(port))], REPO)
    elif block.kind == "asgi":
        (tmp_path / "readme_app.py").write_text(code, encoding="utf-8")
        args = ["--asgi", f"readme_app:{next(iter(block.options))}", "--no-tls"]
        server = _start([sys.executable, "-m", "nghttp2", *args, "--port", str(port)], tmp_path)
    else:  # client-of: start the server it names, then run the block
        command = list(block.command)
        assert command[0] == "python", command
        written = command[command.index("--port") + 1]
        assert written in code
        command[0] = sys.executable
        command[command.index("--port") + 1] = str(port)
        server = _start(command, REPO)
    started.append(server)
    wait_for_port(port, server, timeout=60)

    if block.kind == "client-of":
        proc = subprocess.run(
            [sys.executable, "-c", code.replace(written, str(port))],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        log = _stop(server)
        assert proc.returncode == 0, (
            f"README.md:{block.line}:\n{proc.stdout}\n{proc.stderr}\nserver:\n{log}"
        )
    else:
        try:
            _get(port, block.options.get("expect"))
        finally:
            log = _stop(server)
        assert "Traceback" not in log, log
