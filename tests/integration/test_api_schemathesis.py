"""schemathesis over the whole OpenAPI spec, with an admin and a viewer token: whatever a
client sends, the API never answers 5xx and never echoes a token or any other test secret
(the platforms' credentials the suite registers in ``tests.leaks``).

Driven through schemathesis' Python API (its pytest plugin lags the pytest release)."""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests import leaks

EXAMPLES_PER_OPERATION = 40
# Operations whose input is one or two scalars (an account and days, a user and an
# account) and whose every accepted call writes a record to a topic: fewer examples cover
# them, and each costs a broker round trip.
SCALAR_OPERATIONS = ("/api/v1/accounts/", "/api/v1/erasures")
EXAMPLES_PER_SCALAR_OPERATION = 12


def test_no_server_errors(api_app: FastAPI, tokens: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    # "Send test event" reaches out to the platforms' real addresses: covered against the
    # local receivers in test_destinations_api.
    operations = [op for op in operations if not op.path.endswith("/test")]
    secrets = leaks.secrets() | set(tokens.values())
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=(
                EXAMPLES_PER_SCALAR_OPERATION
                if operation.path.startswith(SCALAR_OPERATIONS)
                else EXAMPLES_PER_OPERATION
            ),
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            for role in ("admin", "viewer"):
                response = case.call(headers={"Authorization": f"Bearer {tokens[role]}"})
                case.validate_response(response, checks=[not_a_server_error])
                assert not any(secret in response.text for secret in secrets)

        check()
