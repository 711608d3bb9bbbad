"""Start and stop the app's Streamlit server on 127.0.0.1 for the load tests, the teacher walk and the browser
tests: a free port, one torch thread, the health endpoint polled until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on now (bound and released on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    config: str | None = None,
    env_extra: dict | None = None,
    log: str | None = None,
    viewer: bool = True,
    wait_s: float = 60.0,
) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` with the launch ``config`` (None: no launch config at all), ``env_extra`` on top of
    this process's environment, output to ``log`` (or discarded); returns (process, url) once the server answers
    its health check. RuntimeError with the log's tail if it does not within ``wait_s``."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1", **(env_extra or {})}
    if config is None:
        env.pop("BRITTLE_CONFIG", None)
    else:
        env["BRITTLE_CONFIG"] = config
    args = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    args += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    if viewer:
        args += ["--client.toolbarMode", "viewer"]
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    tail = Path(log).read_text()[-2000:] if log else ""
    raise RuntimeError(f"streamlit did not start within {wait_s:.0f} s{': ' + tail if tail else ''}")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server (kill it after 20 s)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
