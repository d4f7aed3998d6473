"""Case 10 (contract): schemathesis runs our own OpenAPI document against the real server, every
check on, over every operation, as a real user: zero failures.

A bounded run (a fixed seed and example count, about two minutes). Where a check cannot know a
rule, it is told so below, per operation and per status, with the reason; nothing else is relaxed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog
from tests.support import ROOT, ServerProcess

MAX_EXAMPLES = int(os.environ.get("NUBO_CONTRACT_EXAMPLES", "10"))
SEED = os.environ.get("NUBO_CONTRACT_SEED", "1")
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own

# Rules that hold across the caller's token and the request, which no request schema can state:
# a valid id that names the caller is refused (422), and so schema-valid requests are refused.
CALLER_IS_TARGET = {
    "POST /users/{user_id}/follow": "self_follow: you cannot follow yourself",
    "DELETE /users/{user_id}/follow": "self_follow: nor unfollow yourself",
    "POST /conversations": "a direct conversation with yourself",
    "POST /reports": "own_content: you cannot report yourself or what you wrote",
    "PUT /users/{user_id}/block": "self_block: you cannot block yourself",
    "DELETE /users/{user_id}/block": "self_block: nor unblock yourself",
    "PUT /users/{user_id}/mute": "self_mute: you cannot mute yourself",
    "DELETE /users/{user_id}/mute": "self_mute: nor unmute yourself",
}


def _operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def _config(spec: dict[str, Any]) -> str:
    """schemathesis.toml for this run."""
    lines = [
        "[generation]",
        'database = "none"',  # each run stands alone (no failures replayed from a previous one)
        "[checks]",
        "enabled = true",  # all of them: not_a_server_error, status_code_conformance,
        # content_type_conformance, response_schema_conformance, response_headers_conformance,
        # positive_data_acceptance, negative_data_rejection, missing_required_header,
        # unsupported_method, ignored_auth, use_after_free, ensure_resource_availability, ...
    ]
    for name, op in _operations(spec):
        allowed: list[str] = []
        if any(p["name"] == "cursor" for p in op.get("parameters", [])):
            # A cursor is opaque: only a `next_cursor` the server gave is valid. Any other string
            # of the cursor alphabet is 400 invalid_cursor, which no schema can tell apart.
            allowed.append("400")
        if name in CALLER_IS_TARGET:
            allowed.append("422")  # see CALLER_IS_TARGET
        if name == "POST /media":
            # Bytes that are not a decodable image (schemathesis sends random ones) are 415/422
            # by design: "a real JPEG or PNG" is not something a schema can say.
            allowed += ["415", "422"]
        if name in ("POST /push/subscription", "POST /push/devices"):
            # An endpoint must resolve to a public address, keys must be a P-256 point and a
            # 16-byte secret, a token must be in its platform's format, and the platform
            # configured on the server: nothing a schema can say (422).
            allowed.append("422")
        if name == "POST /me/2fa/passkeys":
            # A WebAuthn attestation that answers this server's challenge, signed by an
            # authenticator, is nothing a schema can say: any other credential is 422.
            allowed.append("422")
        if name.endswith(" /messages/{message_id}/reactions/{emoji}"):
            # One emoji grapheme (Unicode's segmentation rules) is not something a pattern can say:
            # any other string is 422 by design.
            allowed.append("422")
        if allowed:
            lines += [
                "[[operations]]",
                f"include-name = {json.dumps(name)}",
                f"checks.positive_data_acceptance.expected-statuses = {json.dumps(POSITIVE_DEFAULT + allowed)}",
            ]
    return "\n".join(lines) + "\n"


async def _seed(server: ServerProcess, stores: Stores) -> tuple[int, dict[str, str]]:
    """The contract user, and a little of everything to read (rows 1, 2... exist, as generated
    ids often are): a post with a like and a comment, a conversation with a message."""
    alice = await make_user(stores, "contract")
    bob = await make_user(stores, "contractpeer")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        post = (await api.post("/posts", json={"body": "hello #contract"}, headers=bob.headers)).json()
        await api.put(f"/posts/{post['id']}/like", headers=alice.headers)
        await api.post(f"/posts/{post['id']}/comments", json={"body": "hi"}, headers=alice.headers)
        await api.post(f"/users/{bob.id}/follow", headers=alice.headers)
        await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
        conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
        await api.post(f"/conversations/{conversation['id']}/messages", json={"body": "yo"}, headers=bob.headers)
        mine = (await api.post("/posts", json={"body": "mine"}, headers=alice.headers)).json()
        assert mine["id"] == 2
    return alice.id, alice.headers


async def test_the_api_keeps_its_openapi_contract(
    stores: Stores, server: ServerProcess, server_log: ServerLog, tmp_path: Path
) -> None:
    user_id, _ = await _seed(server, stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        spec = (await api.get("/docs/openapi.json")).json()
    (tmp_path / "schemathesis.toml").write_text(_config(spec))
    env = {
        **server.env,
        "NUBO_CONTRACT_USER_ID": str(user_id),  # contract_hooks signs every request in as this user
        "SCHEMATHESIS_HOOKS": "tests.hostile.contract_hooks",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(SCHEMATHESIS), "--config-file", str(tmp_path / "schemathesis.toml"), "run",
        f"{server.url}/docs/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", SEED,
        "--request-timeout", "10", "--max-response-time", "5",
        # /ws is a WebSocket: docs/realtime.md and tests/hostile/test_ws_frames.py cover it.
        "--exclude-path", "/ws",
    ]
    run = await asyncio.to_thread(
        subprocess.run, command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12000:]
    operations = sum(1 for name, _ in _operations(spec) if name != "GET /ws")
    assert f"Tested: {operations}" in report, report[-3000:]
    assert "Authentication failed" not in report, report[-3000:]  # it tested the API, not the guard
    print(report[report.rfind("API Operations:"):])  # what was run, for `pytest -s`
