"""Case 10 (document side): every operation declares its error answers with their one shape."""

from __future__ import annotations

import httpx

from tests.hostile.conftest import ServerLog

ERROR = {"$ref": "#/components/schemas/ErrorBody"}


async def test_every_operation_declares_its_errors_with_the_error_shape(
    api: httpx.AsyncClient, server_log: ServerLog
) -> None:
    spec = (await api.get("/docs/openapi.json")).json()
    assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["error", "code"]
    for path, operations in spec["paths"].items():
        if path == "/ws":
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert responses["default"]["content"]["application/json"]["schema"] == ERROR, where
            if operation.get("security"):
                assert responses["401"]["content"]["application/json"]["schema"] == ERROR, where
            if "requestBody" in operation:
                assert {"413", "415", "422"} <= set(responses), where
