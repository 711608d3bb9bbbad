"""A class at once: N simultaneous browser users on cached presets; median and worst page latency.

Starts ``streamlit run app.py`` on 127.0.0.1 (demo launch config, the project's cache — warm it first with
``python -m analysis warm --model demo --config configs/demo.toml``), opens one headless-Chromium browser and N
browser contexts (separate sessions), and has every user walk the same pages at once: Overview (until its
table shows), Critical regions (until the heatmap and the unit-type chart show, then "Prune region and
compare" on the teaching preset until the result shows) and Safety landscape (press "Compute landscape" on
the teaching preset until VISAGE shows). A page's latency runs from the click to its result.

    python benchmarks/load_test.py --users 10 30            # the issue's sizes
    python benchmarks/load_test.py --users 2 --timeout 120  # a quick check

Bounded: each size stops after ``--timeout`` seconds (unfinished pages count as timed out), and the server
is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_server import start_server  # noqa: E402  (shared with the other server benchmarks)


async def _user(browser, url: str, latencies: list[tuple[str, float]], failures: list[str]) -> None:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await ctx.new_page()
    try:
        t = time.perf_counter()
        await page.goto(url)
        await page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=300_000)
        latencies.append(("overview (first load)", time.perf_counter() - t))

        t = time.perf_counter()
        await page.get_by_role("link", name="Critical regions").click()
        await page.get_by_text("Unit types per decoder layer").first.wait_for(timeout=300_000)
        latencies.append(("critical regions", time.perf_counter() - t))
        t = time.perf_counter()
        await page.get_by_role("button", name="Prune region and compare").click()
        await page.get_by_text("removed").first.wait_for(timeout=300_000)
        latencies.append(("prune (cached preset)", time.perf_counter() - t))

        t = time.perf_counter()
        await page.get_by_role("link", name="Safety landscape").click()
        await page.get_by_role("button", name="Compute landscape").click()
        await page.get_by_text("VISAGE · system prompt").first.wait_for(timeout=300_000)
        latencies.append(("landscape (cached preset)", time.perf_counter() - t))
        if await page.locator('[data-testid="stException"]').count():
            failures.append("an exception was shown")
    except Exception as e:  # a timeout or a closed page: counted, the others go on
        failures.append(f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
    finally:
        await ctx.close()


async def run_size(browser, url: str, users: int, timeout: float) -> dict:
    latencies: list[tuple[str, float]] = []
    failures: list[str] = []
    t = time.perf_counter()
    tasks = [asyncio.create_task(_user(browser, url, latencies, failures)) for _ in range(users)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    values = [v for _, v in latencies]
    per_page = {
        n: statistics.median([v for k, v in latencies if k == n]) for n in dict.fromkeys(k for k, _ in latencies)
    }
    return {
        "users": users,
        "pages": len(latencies),
        "failed users": len(failures) + len(pending),
        "median s": statistics.median(values) if values else float("nan"),
        "worst s": max(values) if values else float("nan"),
        "wall s": time.perf_counter() - t,
        "per page": per_page,
        "why": sorted(set(failures))[:3],
    }


async def main_async(args) -> list[dict]:
    from playwright.async_api import async_playwright

    proc, url = start_server(args.config)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM,
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
            await run_size(browser, url, 1, args.timeout)  # loads the models once (not measured)
            rows = []
            for n in args.users:
                row = await run_size(browser, url, n, args.timeout)
                rows.append(row)
                print(
                    f"{row['users']:3d} users: {row['pages']:4d} pages, median {row['median s']:6.2f} s, "
                    f"worst {row['worst s']:6.2f} s, failed users {row['failed users']}, "
                    f"wall {row['wall s']:.0f} s {row['why'] or ''}",
                    flush=True,
                )
                print("      median per page: " + ", ".join(f"{k} {v:.2f} s" for k, v in row["per page"].items()))
            await browser.close()
        return rows
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--timeout", type=float, default=600, help="seconds per size before it stops")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"))
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    if any(n < 1 for n in args.users):
        print("error: --users must be >= 1", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(main_async(args))
    except RuntimeError as e:  # the server did not start
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if all(r["failed users"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
