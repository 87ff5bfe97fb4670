"""`ragctx serve` refuses a non-loopback address while a published demo key is in the keys file.

Through the CLI, without binding: the refusal comes before the store is opened, so a missing
store tells that the check let a loopback address through.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.auth import DEMO_KEY_SHA256, ApiKey, format_entry, hash_key, is_loopback
from tests.service.conftest import REPO
from tests.service.test_keys_and_logs import cli

SAMPLE = REPO / "data" / "keys.sample.toml"


def serve(tmp_path: Path, keys_text: str, host: str) -> tuple[int, str]:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_text, "utf-8")
    env = {"RAGCTX_KEYS_FILE": str(keys), "RAGCTX_QDRANT_PATH": str(tmp_path / "no-store")}
    out = CliRunner().invoke(cli(), ["serve", "--host", host, "--port", "1"], env=env)
    assert out.exit_code != 0  # never serves here: refused, or no store
    return out.exit_code, str(out.exception)


def test_the_demo_hashes_are_those_of_the_sample_keys_file() -> None:
    sample = tomllib.loads(SAMPLE.read_text("utf-8"))
    assert {k["sha256"] for k in sample["keys"]} == DEMO_KEY_SHA256
    assert hash_key("demo-admin-key") in DEMO_KEY_SHA256


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.com", "localhost.evil"])
def test_serve_off_loopback_with_demo_keys_is_refused_naming_them(
    tmp_path: Path, host: str
) -> None:
    _, message = serve(tmp_path, SAMPLE.read_text("utf-8"), host)
    assert "refusing to serve" in message and repr(host) in message
    for key_id in ("demo-acme-support", "demo-admin"):
        assert key_id in message and f"ragctx keys revoke {key_id}" in message
    assert "ragctx keys add" in message


def test_a_renamed_demo_key_is_still_found_by_its_hash(tmp_path: Path) -> None:
    own = ApiKey(id="own", sha256=hash_key("rgx_private"), tenant="acme", groups=("support",))
    renamed = ApiKey(id="prod", sha256=hash_key("demo-acme-support-key"), tenant="acme", groups=())
    _, message = serve(tmp_path, format_entry(own) + format_entry(renamed), "10.0.0.1")
    assert "refusing to serve" in message and "prod" in message and "own," not in message


def test_loopback_or_own_keys_pass_the_check(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        _, message = serve(tmp_path, SAMPLE.read_text("utf-8"), host)
        assert "refusing" not in message and "does not exist" in message  # the missing store
    own = ApiKey(id="own", sha256=hash_key("rgx_private"), tenant="acme", groups=("support",))
    _, message = serve(tmp_path, format_entry(own), "0.0.0.0")
    assert "refusing" not in message and "does not exist" in message


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "LOCALHOST", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "0177.0.0.1", "localhost.evil", "::ffff:1.2.3.4"):
        assert not is_loopback(host), host
