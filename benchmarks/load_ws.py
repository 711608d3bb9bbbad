"""A class at once, the server alone: N lightweight websocket clients on cached presets; median and worst per page.

Starts ``streamlit run app.py`` on 127.0.0.1 (demo launch config, the project's cache — warm it first with
``python -m analysis warm --model demo --config configs/demo.toml``) and opens N websocket sessions that speak
Streamlit's own protocol (``/_stcore/stream``, ``BackMsg`` / ``ForwardMsg`` protobufs), no browser: each step
sends the rerun a browser would send (the page's ``page_script_hash``; a button press is the button's trigger
widget state, its id read from the page's own deltas) and times it until the run's ``script_finished``. Every
user walks, step by step with the others (``--no-sync``: each at its own pace):

    overview              connect + first run of Overview (its table)
    critical regions      open Critical regions (heatmap + unit types, teaching preset)
    prune (cached)        press "Prune region and compare" (the preset's result: "removed …")
    landscape (open)      open Safety landscape
    landscape (cached)    press "Compute landscape" on the teaching preset (VISAGE metric)

A step counts as failed when the run shows an exception, finishes otherwise than successfully, lacks its page's
marker, or does not finish within ``--timeout`` (per size). ``--browsers K`` adds the real-browser check of
``benchmarks/load_test.py`` on the same server: K Playwright browsers alone, then K browsers while the first
size's N websocket users run.

    python benchmarks/load_ws.py --users 30 60                 # the issue's sizes
    python benchmarks/load_ws.py --users 30 --browsers 3       # and a few real browsers as a check
    python benchmarks/load_ws.py --users 2 --timeout 60        # a quick check

Goal: 30 users median <= 2 s and worst <= 10 s per page on the cached presets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("overview", "critical regions", "prune (cached)", "landscape (open)", "landscape (cached)")
GOAL_MEDIAN_S, GOAL_WORST_S = 2.0, 10.0

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_server import start_server, stop_server  # noqa: E402  (shared with the other server benchmarks)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


@dataclass
class Run:
    """What one script run sent: its status, the texts that mark a page, the buttons and the pages."""

    seconds: float = float("nan")
    status: str = ""
    texts: list[str] = field(default_factory=list)
    buttons: dict[str, str] = field(default_factory=dict)  # label -> widget id
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)  # title -> (page_script_hash, url_pathname)
    exceptions: list[str] = field(default_factory=list)
    n_msgs: int = 0
    n_bytes: int = 0

    def has(self, text: str) -> bool:
        return any(text in t for t in self.texts)


class WsUser:
    """One browser session, without the browser: a websocket to ``/_stcore/stream`` speaking protobuf."""

    def __init__(self, url: str):
        self.ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = None
        self.pages: dict[str, tuple[str, str]] = {}
        self.page = ("", "")  # the current page's (hash, url path): a button rerun stays on it
        self.buttons: dict[str, str] = {}

    async def connect(self) -> None:
        import websockets

        self.ws = await websockets.connect(
            self.ws_url,
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=None,
            ping_interval=None,
            compression=None,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def rerun(self, page: str | None = None, press: str | None = None) -> Run:
        """Rerun on ``page`` (a title from the navigation, or before the first run a URL path such as
        "safety_landscape", as a browser opening that address; None: the current page) pressing the button
        labelled ``press`` (from the previous run on this page); time until the run's ``script_finished``."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if page is not None:
            self.page = self.pages[page] if self.pages else ("", page)
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash, cs.page_name = self.page
        if press is not None:
            if press not in self.buttons:
                raise LookupError(f"no button {press!r} on the page")
            w = cs.widget_states.widgets.add()
            w.id = self.buttons[press]
            w.trigger_value = True
        run = Run()
        t = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        fm = ForwardMsg()
        while True:
            data = await self.ws.recv()
            run.n_msgs += 1
            run.n_bytes += len(data)
            fm.Clear()
            fm.ParseFromString(data)
            kind = fm.WhichOneof("type")
            if kind == "delta":
                self._read_delta(fm.delta, run)
            elif kind == "navigation":
                run.pages = {p.page_name: (p.page_script_hash, p.url_pathname) for p in fm.navigation.app_pages}
                if not self.page[0]:  # the first run: the page the server chose (default, or by URL path)
                    self.page = next(
                        (
                            (p.page_script_hash, p.url_pathname)
                            for p in fm.navigation.app_pages
                            if p.page_script_hash == fm.navigation.page_script_hash
                        ),
                        self.page,
                    )
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fm.script_finished)
                if status == "FINISHED_EARLY_FOR_RERUN":  # a callback or st.rerun(): the next run answers
                    continue
                run.seconds, run.status = time.perf_counter() - t, status
                break
        if run.pages:
            self.pages = run.pages
        self.buttons = run.buttons
        return run

    @staticmethod
    def _read_delta(delta, run: Run) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "button":
            run.buttons[el.button.label] = el.button.id
        elif kind == "markdown":
            run.texts.append(el.markdown.body)
        elif kind == "heading":
            run.texts.append(el.heading.body)
        elif kind == "metric":
            run.texts.append(el.metric.label)
        elif kind == "alert":
            run.texts.append(el.alert.body)
        elif kind == "dataframe":
            run.texts.append("<dataframe>")
        elif kind == "plotly_chart":
            run.texts.append("<plotly_chart>")
        elif kind == "exception":
            run.exceptions.append(f"{el.exception.type}: {el.exception.message[:120]}")


PATHS = {"Critical regions": "critical_regions", "Safety landscape": "safety_landscape"}  # title -> URL path
# step -> (page to open, button to press, a text the finished run must show)
PLAN = {
    "overview": (None, None, "<dataframe>"),
    "critical regions": ("Critical regions", None, "Unit types per layer"),
    "prune (cached)": (None, "Prune region and compare", "removed"),
    "landscape (open)": ("Safety landscape", None, "Compute landscape"),
    "landscape (cached)": (None, "Compute landscape", "VISAGE · system prompt"),
}


async def do_step(user: WsUser, step: str) -> tuple[str, float, str | None]:
    """(step, seconds, why it failed or None)."""
    page, press, marker = PLAN[step]
    t = time.perf_counter()
    try:
        if user.ws is None:  # a first visit: open the websocket (a browser's page load), on its URL path
            await user.connect()
            page = page and PATHS.get(page, page)
        run = await user.rerun(page, press)
    except Exception as e:  # a closed socket, a missing button: counted, the others go on
        return step, time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:120]}"
    seconds = time.perf_counter() - t  # the first step includes opening the websocket, like a page load
    why = None
    if run.status != "FINISHED_SUCCESSFULLY":
        why = f"finished {run.status}"
    elif run.exceptions:
        why = f"exception shown: {run.exceptions[0]}"
    elif not (run.has(marker) or marker in run.buttons):
        why = f"no {marker!r} on the page"
    return step, seconds, why


async def _user_walk(user: WsUser, out: list, steps=STEPS) -> None:
    for step in steps:
        r = await do_step(user, step)
        out.append(r)
        if r[2] is not None:
            return


async def run_size(
    url: str, users: int, timeout: float, sync: bool = True, pid: int | None = None, steps: tuple[str, ...] = STEPS
) -> dict:
    """N users walk ``steps`` at once; bounded by ``timeout`` seconds. Returns the summary row."""
    clients = [WsUser(url) for _ in range(users)]
    results: list[tuple[str, float, str | None]] = []
    cpu0, t0 = (cpu_seconds(pid) if pid else float("nan")), time.perf_counter()
    client_cpu0 = time.process_time()

    step_cpu: dict[str, tuple[float, float]] = {}  # step -> (server CPU s, wall s), synced steps only

    async def synced() -> None:
        alive = list(clients)
        for step in steps:
            c, w = cpu_seconds(pid) if pid else float("nan"), time.perf_counter()
            rs = await asyncio.gather(*(do_step(u, step) for u in alive))
            step_cpu[step] = ((cpu_seconds(pid) if pid else float("nan")) - c, time.perf_counter() - w)
            results.extend(rs)
            alive = [u for u, r in zip(alive, rs) if r[2] is None]

    async def unsynced() -> None:
        await asyncio.gather(*(_user_walk(u, results, steps) for u in clients))

    timed_out = False
    try:
        await asyncio.wait_for(synced() if sync else unsynced(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    wall = time.perf_counter() - t0
    done = [(s, v) for s, v, why in results if why is None]
    failures = [why for _, _, why in results if why is not None]
    missing = users * len(steps) - len(results)
    per_step = {}
    for step in steps:
        v = [x for s, x in done if s == step]
        if v:
            per_step[step] = (statistics.median(v), max(v), len(v)) + step_cpu.get(step, (float("nan"),) * 2)
    values = [v for _, v in done]
    return {
        "users": users,
        "pages": len(done),
        "failed": len(failures),
        "unfinished": missing,
        "timed_out": timed_out,
        "median": statistics.median(values) if values else float("nan"),
        "worst": max(values) if values else float("nan"),
        "wall": wall,
        "per_step": per_step,
        "server_cpu": cpu_seconds(pid) - cpu0 if pid else float("nan"),
        "client_cpu": time.process_time() - client_cpu0,
        "server_rss_mb": rss_mb(pid) if pid else float("nan"),
        "why": sorted(set(failures))[:3],
    }


def print_row(row: dict, label: str = "ws") -> None:
    ok = (
        row["failed"] == 0
        and row["unfinished"] == 0
        and row["median"] <= GOAL_MEDIAN_S
        and row["worst"] <= GOAL_WORST_S
    )
    print(
        f"{label} {row['users']:3d} users: {row['pages']:4d} pages, median {row['median']:6.2f} s, worst "
        f"{row['worst']:6.2f} s, failed {row['failed']}, unfinished {row['unfinished']}, wall {row['wall']:.0f} s, "
        f"server CPU {row['server_cpu']:.1f} s (RSS {row['server_rss_mb']:.0f} MB), "
        f"client CPU {row['client_cpu']:.1f} s"
        f"{'' if label != 'ws' else (' — goal met' if ok else ' — goal missed')} {row['why'] or ''}",
        flush=True,
    )
    for step, (med, worst, n, cpu, wall) in row["per_step"].items():
        busy = f", server CPU {cpu:5.1f} s in {wall:5.1f} s" if cpu == cpu else ""
        print(f"      {step:20s} median {med:6.2f} s  worst {worst:6.2f} s  ({n}{busy})", flush=True)


async def browser_check(url: str, k: int, timeout: float, during: int, sync: bool, pid: int) -> None:
    """K real browsers (benchmarks/load_test.py's walk) alone, then beside ``during`` websocket users."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import load_test
    from playwright.async_api import async_playwright

    if not Path(load_test.CHROMIUM).exists():
        print(f"browser check skipped: no Chromium at {load_test.CHROMIUM}", flush=True)
        return
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=load_test.CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        await load_test.run_size(browser, url, 1, timeout)  # Chromium's own warm-up (not measured)
        for n_ws in (0, during):
            t = time.perf_counter()
            tasks = [load_test.run_size(browser, url, k, timeout)]
            if n_ws:
                tasks.append(run_size(url, n_ws, timeout, sync, pid))
            rows = await asyncio.gather(*tasks)
            b = rows[0]
            print(
                f"browsers {k:3d}{f' beside {n_ws} ws users' if n_ws else ' alone'}: {b['pages']} pages, "
                f"median {b['median s']:.2f} s, worst {b['worst s']:.2f} s, failed users {b['failed users']}, "
                f"wall {time.perf_counter() - t:.0f} s {b['why'] or ''}",
                flush=True,
            )
            print("      median per page: " + ", ".join(f"{n} {v:.2f} s" for n, v in b["per page"].items()), flush=True)
            if n_ws:
                print_row(rows[1], "   ws")
        await browser.close()


async def main_async(args) -> list[dict]:
    proc, url = start_server(args.config, log=args.server_log)
    try:
        warm = await run_size(url, 1, args.timeout, pid=proc.pid)  # loads the models, builds regions once
        if warm["failed"] or warm["unfinished"]:
            print(f"warm-up failed: {warm['why']}", file=sys.stderr)
            return [warm]
        rows = []
        for n in args.users:
            row = await run_size(url, n, args.timeout, sync=not args.no_sync, pid=proc.pid)
            rows.append(row)
            print_row(row)
        if args.browsers:
            await browser_check(url, args.browsers, args.timeout, args.users[0], not args.no_sync, proc.pid)
        return rows
    finally:
        stop_server(proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[30, 60])
    ap.add_argument("--timeout", type=float, default=300, help="seconds per size before it stops")
    ap.add_argument("--browsers", type=int, default=0, help="also K real browsers (load_test.py) as a check")
    ap.add_argument("--no-sync", action="store_true", help="each user walks at its own pace")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"))
    ap.add_argument("--server-log", default=None, help="write the server's output here")
    args = ap.parse_args(argv)
    if any(n < 1 for n in args.users) or args.browsers < 0 or args.timeout <= 0:
        print("error: --users must be >= 1, --browsers >= 0, --timeout > 0", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(main_async(args))
    except RuntimeError as e:  # the server did not start
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if all(r["failed"] == 0 and r["unfinished"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
