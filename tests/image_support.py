"""The Dockerfile read as data: what each stage copies, the runtime's ENV and command."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    name: str
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources, destination)
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = text.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def read_dockerfile(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for word, rest in _instructions(path.read_text()):
        if word == "FROM":
            stages.append(Stage(rest.split()[-1]))
        elif word == "WORKDIR":
            stages[-1].workdir = rest
        elif word == "COPY":
            args = [a for a in shlex.split(rest) if not a.startswith("--chown")]
            if any(a.startswith("--from") for a in args):
                continue  # from another stage, not from the build context
            *sources, dest = [a for a in args if not a.startswith("--")]
            stages[-1].copies.append((sources, dest))
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stages[-1].env[key] = value
        elif word == "CMD":
            stages[-1].cmd = json.loads(rest)
    return stages
