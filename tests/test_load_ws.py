"""benchmarks/load_ws.py against a real server: two websocket users (Streamlit's own protocol, no browser) load
the Overview at once; every run ends in script_finished with the page's table, and the latencies are sane."""

import asyncio
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import load_ws  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = load_ws.start_server(
        str(ROOT / "configs" / "demo.toml"), env_extra={"BRITTLE_CACHE": str(tmp_path_factory.mktemp("cache"))}
    )
    try:
        warm = asyncio.run(load_ws.run_size(url, 1, timeout=120, steps=("landscape (open)",)))  # loads the pair
        assert warm["failed"] == 0 and warm["unfinished"] == 0, warm["why"]
        yield proc, url
    finally:
        load_ws.stop_server(proc)


def test_two_users_open_a_page_at_once(server):
    proc, url = server
    row = asyncio.run(load_ws.run_size(url, 2, timeout=60, pid=proc.pid, steps=("landscape (open)",)))
    assert row["why"] == [] and row["failed"] == 0 and row["unfinished"] == 0 and not row["timed_out"], row
    assert row["pages"] == 2
    median, worst, n, cpu, wall = row["per_step"]["landscape (open)"]
    assert n == 2
    assert 0 < median <= worst <= wall <= row["wall"] < 60
    assert row["median"] == median and row["worst"] == worst
    assert 0 < cpu <= row["server_cpu"] and row["server_rss_mb"] > 0  # the server did the work


def test_a_run_reports_its_page_and_a_missing_button_fails(server):
    async def walk():
        user = load_ws.WsUser(server[1])
        await user.connect()
        try:
            first = await user.rerun()
            missing = await load_ws.do_step(user, "prune (cached)")  # Overview has no "Prune region and compare"
            landscape = await user.rerun("Safety landscape")  # page_script_hash picks the page
            return first, missing, landscape
        finally:
            await user.close()

    first, missing, landscape = asyncio.run(walk())
    assert first.status == "FINISHED_SUCCESSFULLY" and not first.exceptions
    assert first.has("<dataframe>") and first.has("Safety and utility") and "Compute landscape" not in first.buttons
    assert {"Overview / playground", "Critical regions", "Safety landscape"} <= set(first.pages)
    assert first.n_msgs > 5 and first.n_bytes > 1000 and first.seconds > 0
    step, seconds, why = missing
    assert step == "prune (cached)" and seconds >= 0 and why is not None and "LookupError" in why
    assert landscape.status == "FINISHED_SUCCESSFULLY" and "Compute landscape" in landscape.buttons
    assert landscape.has("Safety landscape") and not landscape.has("Safety and utility")


def test_bad_arguments_exit_2():
    assert load_ws.main(["--users", "0"]) == 2
    assert load_ws.main(["--timeout", "-1"]) == 2


@pytest.mark.skipif(not os.environ.get("LOAD_WS_PAGES"), reason="set LOAD_WS_PAGES=1: every page kind, ~1 min")
def test_every_page_kind(server):
    proc, url = server
    row = asyncio.run(load_ws.run_size(url, 1, timeout=300, pid=proc.pid))
    assert row["failed"] == 0 and row["unfinished"] == 0, row["why"]
    assert set(row["per_step"]) == set(load_ws.STEPS)
