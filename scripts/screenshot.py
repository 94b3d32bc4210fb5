"""Screenshot of the console links (operator extra links) of a finished ``s3_to_table`` run, for
docs/lineage.md: the task instance pages of ``polaris_ingest`` and ``adobe_ingest`` in the Airflow 3
UI, side by side in one picture.

    docker/local-stack.sh up        # STACK_PORT=8090 ... for another port
    .venv/bin/python scripts/screenshot.py [--port 8080] [--out docs/img/extra-links.png]

Takes the latest successful run (the stack's scheduled run, or triggers one and waits for it) and
drives headless Chromium (Debian's ``chromium``) over the DevTools protocol, as
docker/screenshot.py does for the graph picture: no browser download, no extra package. Each task
page is captured once its "Extra Links" buttons are drawn; the two captures are then put side by
side on a blank page in the same browser and captured again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import importlib.util
import json
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "s3_to_table"
TASKS = {"polaris_ingest": "Imply Polaris job", "adobe_ingest": "AEP batch"}  # task: its link's name

# docker/screenshot.py's browser: Chromium logged in to the UI, driven over DevTools (one command,
# await its reply; wait for an expression).
_spec = importlib.util.spec_from_file_location("graph_screenshot", ROOT / "docker" / "screenshot.py")
assert _spec is not None and _spec.loader is not None
_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_graph)
DevTools = _graph.DevTools


def finished_run(base: str, wait_seconds: float) -> str:
    """The latest successful ``s3_to_table`` run in which both ingestion tasks ran (a run can switch
    a branch off), triggering one when there is none."""
    session = requests.Session()
    # SIMPLE_AUTH_MANAGER_ALL_ADMINS (local-stack.sh): a token without credentials.
    token = session.get(f"{base}/auth/token", timeout=10).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"{base}/api/v2/dags/{DAG_ID}/dagRuns"

    def get(url: str, **params: object) -> dict:
        reply = session.get(url, params=params, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def both_loaded(run_id: str) -> bool:
        tis = get(f"{api}/{run_id}/taskInstances")["task_instances"]
        return all(ti["state"] == "success" for ti in tis if ti["task_id"] in TASKS)

    runs = get(api, order_by="-run_after", limit=20)["dag_runs"]
    for run in runs:
        if run["state"] == "success" and both_loaded(run["dag_run_id"]):
            return run["dag_run_id"]
    unfinished = [r["dag_run_id"] for r in runs if r["state"] in ("queued", "running")]
    if unfinished:  # the stack's first scheduled run, still loading
        run_id = unfinished[0]
    else:  # with a logical date: the DAG reads the folder of its `ds`, which local-stack.sh seeds
        now = dt.datetime.now(dt.UTC).isoformat()
        run_id = session.post(api, json={"logical_date": now}, timeout=10).json()["dag_run_id"]
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        state = get(f"{api}/{run_id}")["state"]
        if state == "success":
            return run_id
        if state == "failed":
            raise SystemExit(f"run {run_id} failed: see the task logs")
        time.sleep(3)
    raise SystemExit(f"run {run_id} did not finish within {wait_seconds:.0f} s")


def links_shown(name: str) -> str:
    """A page expression: true once a link button named ``name`` is drawn."""
    return f"[...document.querySelectorAll('a')].some(a => a.textContent.trim() === {json.dumps(name)})"


GAP = 6  # pixels between the pages in the picture


async def top_of_task_pages(tools: DevTools, base: str, run_id: str, width: int, crop: int) -> list[str]:
    """The top ``crop`` pixels of each task instance's Details tab (base64 PNGs), which opens
    with the task's "Extra Links" buttons."""
    shots = []
    for task_id, link in TASKS.items():
        await tools.call("Page.navigate", url=f"{base}/dags/{DAG_ID}/runs/{run_id}/tasks/{task_id}/details")
        await tools.wait_for(links_shown(link), 60)
        await asyncio.sleep(1)  # let the rest of the page finish drawing
        clip = {"x": 0, "y": 0, "width": width, "height": crop, "scale": 1}
        shots.append((await tools.call("Page.captureScreenshot", format="png", clip=clip))["data"])
    return shots


async def stacked(tools: DevTools, shots: list[str], width: int, crop: int) -> bytes:
    """The pictures one above the other, drawn on a blank page of the same browser and captured."""
    images = "".join(f'<img src="data:image/png;base64,{shot}" style="display:block">' for shot in shots)
    html = f"<body style='margin:0;background:#cbd5e0;display:grid;gap:{GAP}px'>{images}</body>"
    await tools.call("Page.navigate", url="about:blank")
    await tools.wait_for("document.readyState === 'complete'", 30)
    await tools.evaluate(f"document.open(); document.write({json.dumps(html)}); document.close()")
    await tools.wait_for("[...document.images].every(i => i.complete && i.naturalWidth)", 30)
    height = len(shots) * (crop + GAP) - GAP
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = await tools.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
    return base64.b64decode(shot["data"])


async def capture(chromium: str, base: str, run_id: str, size: tuple[int, int], crop: int) -> bytes:
    width, height = size
    async with _graph.logged_in_browser(chromium, base, width, height) as tools:
        shots = await top_of_task_pages(tools, base, run_id, width, crop)
        return await stacked(tools, shots, width, crop)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080, help="the api-server's port (STACK_PORT)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "extra-links.png")
    parser.add_argument("--size", default="1280x800", help="browser window size, WIDTHxHEIGHT")
    parser.add_argument("--crop", type=int, default=440, help="pixels kept from the top of each task page")
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for a triggered run")
    args = parser.parse_args()
    chromium = _graph.find_chromium()
    base = f"http://127.0.0.1:{args.port}"
    run_id = finished_run(base, args.wait)
    width, height = (int(v) for v in args.size.split("x"))
    picture = asyncio.run(capture(chromium, base, run_id, (width, height), args.crop))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(picture)
    print(f"{args.out}: run {run_id}, tasks {', '.join(TASKS)}")


if __name__ == "__main__":
    main()
