"""The README's example session is replayed against two real instances, and its transcript is
what that replay prints: the README cannot promise frames the server does not send.

After changing the session, regenerate the transcript with
`NUBO_README_WRITE=1 ./scripts/test tests/test_readme.py`.
"""

import os
import re
import subprocess
import sys

from tests.support import ROOT

README = ROOT / "README.md"
SESSION_MARK = "<!-- tests/test_readme.py runs this block"
TRANSCRIPT_MARK = "<!-- transcript -->"
# What changes from run to run: times, MongoDB object ids, tokens.
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"\b[0-9a-f]{24}\b"), "<object id>"),
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+"), "<token>"),
]


def _block_after(text: str, mark: str) -> tuple[int, int]:
    """Start and end offsets of the body of the first fenced block after mark."""
    fence = text.index("```", text.index(mark))
    start = text.index("\n", fence) + 1
    return start, text.index("```", start)


def _normalized(text: str) -> str:
    for pattern, placeholder in VOLATILE:
        text = pattern.sub(placeholder, text)
    return text.strip()


def test_readme_session_prints_its_transcript_against_two_instances(start_server, tmp_path) -> None:
    first, second = start_server(), start_server()
    text = README.read_text()
    start, end = _block_after(text, SESSION_MARK)
    script = (
        text[start:end]
        .replace("localhost:8080", f"127.0.0.1:{first.port}")
        .replace("localhost:8081", f"127.0.0.1:{second.port}")
        .replace(".venv/bin/python scripts/ws.py", f"{sys.executable} {ROOT / 'scripts/ws.py'}")
        .replace(".venv/bin/python -c", f"{sys.executable} -c")
        .replace("@docs/img/", f"@{ROOT / 'docs/img'}/")
    )
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    if os.environ.get("NUBO_README_WRITE"):
        t_start, t_end = _block_after(text, TRANSCRIPT_MARK)
        README.write_text(text[:t_start] + result.stdout.strip() + "\n" + text[t_end:])
        text = README.read_text()
    t_start, t_end = _block_after(text, TRANSCRIPT_MARK)
    assert _normalized(result.stdout) == _normalized(text[t_start:t_end])
