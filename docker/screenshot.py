"""Screenshot of the Airflow UI's graph of a finished ``s3_to_knowledge_base`` run, for the README.

    docker/local-stack.sh up
    .venv/bin/python docker/screenshot.py [--port 8080] [--out docs/s3_to_knowledge_base.png]

Takes the latest successful run (or triggers one and waits for it), then drives headless Chromium
(Debian's ``chromium``) over the DevTools protocol: ``chromium --screenshot`` alone cannot choose
the graph view, which the UI keeps in localStorage (``default_dag_view``), nor wait for the graph
to be drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import requests

DAG_ID = "s3_to_knowledge_base"
ROOT = Path(__file__).resolve().parents[1]


def finished_run(base: str, wait_seconds: float) -> str:
    """The run id of the latest successful run, triggering one when there is none."""
    session = requests.Session()
    # SIMPLE_AUTH_MANAGER_ALL_ADMINS (local-stack.sh): a token without credentials.
    token = session.get(f"{base}/auth/token", timeout=10).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"{base}/api/v2/dags/{DAG_ID}/dagRuns"

    def latest() -> list[dict]:
        reply = session.get(api, params={"order_by": "-run_after", "limit": 20}, timeout=10)
        reply.raise_for_status()
        return reply.json()["dag_runs"]

    done = [r for r in latest() if r["state"] == "success"]
    if done:
        return done[0]["dag_run_id"]
    run_id = session.post(api, json={"logical_date": None}, timeout=10).json()["dag_run_id"]
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        state = next(r["state"] for r in latest() if r["dag_run_id"] == run_id)
        if state == "success":
            return run_id
        if state == "failed":
            raise SystemExit(f"run {run_id} failed: see the task logs")
        time.sleep(3)
    raise SystemExit(f"run {run_id} did not finish within {wait_seconds:.0f} s")


class DevTools:
    """Just enough of the Chrome DevTools protocol: send a command, await its reply."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse):
        self.socket, self.next_id = socket, 0

    async def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        await self.socket.send_json({"id": self.next_id, "method": method, "params": params})
        async for message in self.socket:
            reply = json.loads(message.data)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise RuntimeError("Chromium closed the DevTools connection")

    async def evaluate(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not await self.evaluate(expression):
            if time.monotonic() > deadline:
                raise SystemExit(f"the page never showed {expression!r}")
            await asyncio.sleep(0.5)


def find_chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    return chromium


@contextlib.asynccontextmanager
async def logged_in_browser(chromium: str, base: str, width: int, height: int) -> AsyncIterator[DevTools]:
    """A headless Chromium of ``width`` x ``height`` logged in to the Airflow UI at ``base``
    (the login sets the UI's token cookie), driven over the DevTools protocol; closed after."""
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-port=0", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = Path(profile, "DevToolsActivePort")
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text().strip():
                if time.monotonic() > deadline or browser.poll() is not None:
                    raise SystemExit("Chromium did not start")
                await asyncio.sleep(0.2)
            port = port_file.read_text().split()[0]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as reply:
                    page = next(t for t in await reply.json() if t["type"] == "page")
                async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                    tools = DevTools(socket)
                    await tools.call("Page.enable")
                    await tools.call("Page.navigate", url=f"{base}/auth/token/login?next={base}/")
                    await tools.wait_for("document.readyState === 'complete'", 30)
                    yield tools
        finally:
            browser.terminate()
            browser.wait(10)


async def capture(chromium: str, base: str, run_id: str, out: Path, width: int, height: int) -> None:
    async with logged_in_browser(chromium, base, width, height) as tools:
        # choose the graph view, then open the run
        await tools.evaluate("localStorage.setItem('default_dag_view', JSON.stringify('graph'))")
        await tools.call("Page.navigate", url=f"{base}/dags/{DAG_ID}/runs/{run_id}")
        await tools.wait_for("document.querySelectorAll('.react-flow__node').length > 3", 60)
        await asyncio.sleep(3)  # let the graph settle and fit the view
        shot = await tools.call("Page.captureScreenshot", format="png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080, help="the api-server's port (STACK_PORT)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / f"{DAG_ID}.png")
    parser.add_argument("--size", default="1600x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for a triggered run")
    args = parser.parse_args()
    chromium = find_chromium()
    base = f"http://127.0.0.1:{args.port}"
    run_id = finished_run(base, args.wait)
    width, height = (int(v) for v in args.size.split("x"))
    asyncio.run(capture(chromium, base, run_id, args.out, width, height))
    print(f"{args.out}: run {run_id}")


if __name__ == "__main__":
    main()
