"""gristmill.toml: [serve] is resolved when first used, and an API key that resolves to
nothing is refused rather than opening the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gristmill.config import load_config, redact
from gristmill.errors import ConfigError

WAREHOUSE = '[warehouse]\npath = "${GM_TEST_WAREHOUSE}"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gristmill.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unset_variable_in_serve_fails_only_when_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GM_TEST_WAREHOUSE", "wh.duckdb")
    monkeypatch.delenv("GM_TEST_UNSET_KEY", raising=False)
    path = write(tmp_path, WAREHOUSE + '[serve]\napi_keys = ["${GM_TEST_UNSET_KEY}"]\n')

    config = load_config(path)  # what train, run and features get need
    assert config.warehouse.path == "wh.duckdb" and config.online.type == "sqlite"
    with pytest.raises(ConfigError, match=r"serve\.api_keys\[0\].*GM_TEST_UNSET_KEY.*export"):
        _ = config.serve

    monkeypatch.setenv("GM_TEST_UNSET_KEY", "k-31337-secret")
    config = load_config(path)
    assert config.serve.api_keys == ["k-31337-secret"]
    assert redact("key k-31337-secret here") == "key *** here"


def test_other_sections_still_fail_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GM_TEST_WAREHOUSE", raising=False)
    with pytest.raises(ConfigError, match=r"'warehouse\.path' references \$\{GM_TEST_WAREHOUSE\}"):
        load_config(write(tmp_path, WAREHOUSE))


def test_a_bad_serve_value_is_reported_when_serving(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[serve]\nmax_connections = 0\nheader_timeout = 'x'\n"))
    with pytest.raises(ConfigError) as caught:
        _ = config.serve
    assert "serve.max_connections" in str(caught.value)
    assert "serve.header_timeout: Value error, 'x' is not a duration" in str(caught.value)
    with pytest.raises(ConfigError, match="serve: Input should be a valid dictionary"):
        load_config(write(tmp_path, "serve = 3\n"))


@given(blank=st.text(alphabet=" \t\r\n\u00a0\u3000", max_size=4))
def test_a_key_that_resolves_to_blank_refuses_to_serve(blank: str) -> None:
    import os
    import tempfile

    os.environ["GM_TEST_BLANK_KEY"] = blank
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = write(Path(folder), '[serve]\napi_keys = ["good", "${GM_TEST_BLANK_KEY}"]\n')
            config = load_config(path)
            with pytest.raises(ConfigError) as caught:
                _ = config.serve
    finally:
        del os.environ["GM_TEST_BLANK_KEY"]
    message = str(caught.value)
    assert "serve.api_keys[1]" in message and "${GM_TEST_BLANK_KEY}" in message
    assert "empty" in message and "without a key" in message


def test_a_literal_blank_key_refuses_too(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[serve]\napi_keys = [""]\n'))
    with pytest.raises(ConfigError, match=r"api_keys\[0\].*it is empty"):
        _ = config.serve
    assert load_config(write(tmp_path, "[serve]\napi_keys = []\n")).serve.api_keys == []


def test_a_blank_secret_redacts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill.config import redact

    monkeypatch.setenv("GM_TEST_SPACE_KEY", " ")
    config = load_config(write(tmp_path, '[serve]\napi_keys = ["${GM_TEST_SPACE_KEY}"]\n'))
    with pytest.raises(ConfigError):
        _ = config.serve
    assert redact("a message with spaces") == "a message with spaces"
