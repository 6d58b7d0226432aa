"""Shared test configuration.

Tests that need a real service (Mosquitto, PostgreSQL) ask for it through the
`mosquitto_url` / `postgres_url` fixtures: when the service is not reachable they skip,
unless PINTAR_REQUIRE_SERVICES=1 (as in CI), where they fail.
"""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REQUIRE_SERVICES = os.environ.get("PINTAR_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _need(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and PINTAR_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mosquitto_url() -> str:
    host = os.environ.get("PINTAR_TEST_MQTT_HOST", "127.0.0.1")
    port = int(os.environ.get("PINTAR_TEST_MQTT_PORT", "1883"))
    _need("Mosquitto", host, port)
    return f"mqtt://{host}:{port}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the test PostgreSQL database (asyncpg driver)."""
    url = os.environ.get(
        "PINTAR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    _need("PostgreSQL", "127.0.0.1", 5432)
    return url
