"""Property-based API testing from the OpenAPI spec (schemathesis): whatever a client
sends, the server never answers with a 5xx. Bounded: a few examples per operation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case

from operator_data.api.auth import Role
from tests.operator_data.helpdesk_server import running_server

pytestmark = pytest.mark.timeout(120)

EXAMPLES_PER_OPERATION = 4


def _exercise(
    operation: Any, base_url: str, headers: dict[str, str], statuses: list[int], failures: list[str]
) -> None:
    strategy: st.SearchStrategy[Case[Any]] = operation.as_strategy()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=headers)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:200]}"
            )

    call()


def test_no_operation_answers_with_a_server_error(tmp_path: Path) -> None:
    with running_server(tmp_path / "st.db", extra_messages=2) as server:
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 15
        failures: list[str] = []
        statuses: list[int] = []
        for role in (Role.ADMIN, Role.HELPDESK):
            headers = {"X-API-Key": server.seeded.keys[role]}
            for operation in operations:
                _exercise(operation, server.base_url, headers, statuses, failures)
    assert failures == []
    # The run really exercised the API: successes and client errors both occurred.
    assert len(statuses) >= 2 * len(operations)
    assert any(200 <= code < 300 for code in statuses)
    assert any(400 <= code < 500 for code in statuses)
