"""``Settings.public_base_url``: the configured public URL, else the bound address; never a request's Host."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"host": "0.0.0.0", "port": 9000}, "http://127.0.0.1:9000"),
        ({"host": "::", "port": 9000}, "http://[::1]:9000"),
        ({"host": "fd00::5", "port": 80}, "http://[fd00::5]:80"),
        ({"host": "10.0.0.7"}, "http://10.0.0.7:8000"),
        ({"public_url": "https://scenes.example.org/"}, "https://scenes.example.org"),
        ({"public_url": "https://example.org/vid2scene", "host": "0.0.0.0"}, "https://example.org/vid2scene"),
    ],
)
def test_public_base_url_is_the_configured_url_or_the_bound_address(values: dict, expected: str) -> None:
    assert Settings(**values).public_base_url == expected


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "example.org", "http://", "https://a.org/x?y=1", "http://a b"])
def test_a_public_url_that_is_not_an_http_base_url_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_url=bad)
