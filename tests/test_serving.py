"""Safe serving: the app listens on localhost unless the launch config says otherwise, and when
it listens beyond localhost typed paths, remote code and writing folders are off unless the config opens them."""

import subprocess
import sys
import tomllib

import pytest
from streamlit.testing.v1 import AppTest

from analysis.app_support.config import AppConfig, is_local, load_config
from conftest import ROOT


def test_the_default_listens_on_this_machine_only():
    assert AppConfig().server_address == "127.0.0.1" and is_local(AppConfig().server_address)
    streamlit_cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert streamlit_cfg["server"]["address"] == "127.0.0.1"
    for name in ("default.toml", "demo.toml"):
        assert is_local(load_config(ROOT / "configs" / name).server_address)
    # `make run` passes the config's address to Streamlit
    dry = subprocess.run(
        ["make", "-n", "run", f"BIN={ROOT}/.venv/bin", "STAMP="], cwd=ROOT, capture_output=True, text=True
    )
    assert "--server.address" in dry.stdout and "analysis.app_support.config server_address" in dry.stdout
    out = subprocess.run(
        [sys.executable, "-m", "analysis.app_support.config", "server_address"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "127.0.0.1"


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.20", "::"])
def test_beyond_localhost_paths_remote_code_and_writes_are_off(address):
    cfg = AppConfig().for_address(address)
    assert cfg.exposed
    assert not (cfg.allow_custom_paths or cfg.allow_remote_code or cfg.allow_writes)
    assert cfg.allow_uploads  # parsed as data only; still allowed
    local = AppConfig().for_address("127.0.0.1")
    assert not local.exposed and local.allow_custom_paths and local.allow_remote_code and local.allow_writes


def test_a_config_can_open_each_lock_explicitly(tmp_path):
    p = tmp_path / "class.toml"
    p.write_text('server_address = "0.0.0.0"\nallow_writes = true\n')
    cfg = load_config(p).for_address(None)
    assert cfg.exposed and cfg.allow_writes and not cfg.allow_custom_paths and not cfg.allow_remote_code
    p.write_text('server_address = "0.0.0.0"\nallow_custom_paths = true\nallow_remote_code = true\n')
    cfg = load_config(p).for_address(None)
    assert cfg.allow_custom_paths and cfg.allow_remote_code and not cfg.allow_writes


def test_demo_mode_closes_remote_code_and_writes():
    cfg = load_config(ROOT / "configs" / "demo.toml")
    assert not cfg.allow_remote_code and not cfg.allow_writes


def test_the_app_served_on_every_interface_offers_no_paths_code_or_saving(tmp_path, monkeypatch):
    from streamlit import config as st_config

    monkeypatch.delenv("BRITTLE_CONFIG", raising=False)
    monkeypatch.chdir(ROOT)
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.sidebar.text_input  # no typed model folders / hub ids
        assert not any(c.label == "Trust remote code" for c in at.sidebar.checkbox)
        assert not any(b.label == "Clear cache" for b in at.sidebar.button)
        assert any("Served beyond this machine" in c.value for c in at.sidebar.caption)
    finally:
        st_config.set_option("server.address", old)
