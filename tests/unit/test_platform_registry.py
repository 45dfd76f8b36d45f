"""A platform is registered once (``@platform`` on its settings model) and found by name
everywhere: the API's destination types, the CLI's choices, its sink module, its icon."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sinks import build_sink
from schemas.destinations import make_destination
from schemas.platforms import PLATFORM_SPECS, PLATFORMS, SETTINGS_MODELS, DatadogSettings, platform
from tests.samples import VALID_SETTINGS

STATIC = Path(__file__).resolve().parents[2] / "query_api" / "static" / "platforms"


@pytest.mark.parametrize("key", sorted(PLATFORM_SPECS))
def test_every_registered_platform_has_a_sink_an_icon_and_a_sample(key: str) -> None:
    spec = PLATFORM_SPECS[key]
    assert SETTINGS_MODELS[key] is spec.settings and key in PLATFORMS
    sink = build_sink(make_destination(key, "t", VALID_SETTINGS[key]))
    try:
        assert sink.platform == key
    finally:
        sink.close()
    assert (STATIC / f"{key}.svg").is_file()
    assert spec.name and spec.description


def test_a_platform_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        platform("datadog", "Datadog again", "")(DatadogSettings)


def test_a_destination_of_an_unknown_platform_is_refused() -> None:
    from schemas.destinations import DestinationError

    with pytest.raises(DestinationError, match="platform: must be one of datadog"):
        make_destination("pagerduty", "t", {})
