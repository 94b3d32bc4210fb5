"""The base of every vendor fake: a FastAPI app served by uvicorn in a thread, with a journal,
fault injection and control endpoints under ``/_fake`` that need no auth.

Jobs change state lazily, computed when read, so a fake has no background threads. When a job
moves on is set by the fake's ``clock`` (a tunable, like the timings, through ``configure`` or
``/_fake/config``):

- ``wall`` (the default, for demos): a job moves on as real time passes, after the fake's
  ``*_seconds`` timings;
- ``polls``: each status read of a job moves it one state on (the reply shows the new state), or
  each ``reads_per_step``-th read when that is more than 1;
- ``steps``: a job moves on only when told, by ``advance(job_id)`` or ``POST /_fake/advance``.

Tests that need an order (a job still running when the test acts, finished when it looks) use
``polls`` or ``steps``: neither depends on how busy the machine is. For the same reason a request
can be held (the ``hold`` fault) until the test calls ``release()``, instead of delayed for a time.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Hashable, MutableMapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# ``body``: answer 200 (or ``status``) with the rule's ``body`` as JSON instead of calling the app, e.g.
# a job status value the client has never seen. ``malformed`` answers garbage without calling the app;
# ``malformed_after`` lets the app act and garbles its 2xx reply (the server did the work, the client
# cannot read that it did), as ``drop_after`` does with the connection.
# ``echo``: answer 400 (or ``status``) with an error whose message repeats the request, as careless
# vendors do: its query, headers (the bearer token, API keys), raw body (a form-encoded client
# secret, presigned URLs) and each form value decoded and re-encoded. Tests check none of it leaks.
# ``hold``: the request waits, unanswered, until ``release()`` (or ``seconds``, default 60, a guard
# against a test that never releases), then goes on as if nothing happened; a ``held`` event is
# journaled when it starts waiting, so a test can act while a call is known to be in flight.
FAULT_ACTIONS = {
    "status",
    "delay",
    "hold",
    "drop",
    "drop_after",
    "malformed",
    "malformed_after",
    "body",
    "echo",
}
HOLD_GUARD_SECONDS = 60.0
CLOCKS = ("wall", "polls", "steps")
CLOCK_TUNABLES = ("clock", "reads_per_step")


class FaultInjector:
    """Raw ASGI middleware, outermost, so it can abort uvicorn's connection for ``drop`` faults."""

    def __init__(self, app: Any, fake: FakeService):
        self.app = app
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_fake"):
            return await self.app(scope, receive, send)
        arrived = time.monotonic()
        status_seen: list[int] = []
        journaled: list[bool] = []

        def journal(status: int | None) -> None:
            # Before the reply leaves: a client that has its answer must find its request in the
            # journal (journaling after the send let a test read the journal one entry short).
            if not journaled:
                journaled.append(True)
                self.fake.journal_request(scope, status, action, arrived)

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
                journal(message["status"])
            await send(message)

        agent = dict(scope.get("headers") or []).get(b"user-agent", b"").decode(errors="replace")
        fault = self.fake.take_fault(scope["method"], scope["path"], agent) or {}
        action = fault.get("action")
        try:
            if action == "status":
                headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") else {}
                body = self.fake.error_body("Injected", "injected fault")
                response = JSONResponse(body, status_code=int(fault.get("status", 503)), headers=headers)
                return await response(scope, receive, recording_send)
            if action == "body":
                response = JSONResponse(fault.get("body"), status_code=int(fault.get("status", 200)))
                return await response(scope, receive, recording_send)
            if action == "echo":
                message = echo_message(scope, await _read_body(receive))
                body = self.fake.error_body("Echo", message)
                response = JSONResponse(body, status_code=int(fault.get("status", 400)))
                return await response(scope, receive, recording_send)
            if action == "malformed":
                response = JSONResponse(None, status_code=200)
                response.body = b"{not json"
                response.headers["content-length"] = str(len(response.body))
                return await response(scope, receive, recording_send)
            if action == "malformed_after":
                held: list[dict] = []

                async def hold(message: dict) -> None:
                    held.append(message)

                await self.app(scope, receive, hold)  # the server acts...
                status = next(m["status"] for m in held if m["type"] == "http.response.start")
                if status >= 400:  # an error reply goes through unchanged
                    for held_message in held:
                        await recording_send(held_message)
                    return None
                garbled = b"{not json"  # ...and its success reply cannot be read
                start_headers = [(b"content-type", b"application/json"), (b"content-length", b"9")]
                await recording_send(
                    {"type": "http.response.start", "status": status, "headers": start_headers}
                )
                return await recording_send({"type": "http.response.body", "body": garbled})
            if action == "drop":
                journal(None)
                return _abort(send)
            if action == "delay":
                await asyncio.sleep(float(fault.get("seconds", 1.0)))
            if action == "hold":
                await self.fake.hold(scope, float(fault.get("seconds", HOLD_GUARD_SECONDS)))
            if action == "drop_after":

                async def swallow(message: MutableMapping[str, Any]) -> None:
                    pass

                await self.app(scope, receive, swallow)  # the server acts...
                journal(None)
                return _abort(send)  # ...and the reply is lost
            return await self.app(scope, receive, recording_send)
        finally:
            journal(status_seen[0] if status_seen else None)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def echo_message(scope: dict, body: bytes) -> str:
    """What an ``echo`` fault answers: the request as a vendor error might quote it."""
    headers = "; ".join(f"{k.decode()}: {v.decode(errors='replace')}" for k, v in scope.get("headers") or [])
    text = body.decode(errors="replace")
    query = scope.get("query_string", b"").decode(errors="replace")
    values = [v for _, v in parse_qsl(text)] + [v for _, v in parse_qsl(query)]
    return (
        f"cannot process {scope['method']} {scope['path']}?{query} "
        f"(headers {headers}) body {text} "
        f"values {values} encoded {[quote(v, safe='') for v in values]}"
    )


def _abort(send: Any) -> None:
    # uvicorn's ASGI ``send`` is a bound method of the request cycle, which owns the transport.
    send.__self__.transport.abort()


def moto_s3_client(endpoint_url: str | None, key: tuple[str, str] = ("testing", "testing")) -> Any:
    """A boto3 S3 client for moto's server (moto accepts any key)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
    )


class FakeService:
    """Subclasses set ``conn_id``, implement ``install_routes`` and ``airflow_connection``; a fake
    of an AWS service sets ``conn_id = None`` and implements ``aws_service_config`` instead."""

    conn_id: ClassVar[str | None]
    tunables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, s3_endpoint_url: str | None = None, clock: str = "wall", reads_per_step: int = 1):
        self.s3_endpoint_url = s3_endpoint_url
        self.clock = self._check_clock(clock)
        self.reads_per_step = reads_per_step
        # subclasses set their tunables before calling this; reset() puts them back
        self._initial_tunables = {name: getattr(self, name) for name in (*CLOCK_TUNABLES, *self.tunables)}
        self.lock = threading.RLock()
        self._progress: dict[Hashable, dict[str, Any]] = {}
        self._journal: list[dict[str, Any]] = []
        self._faults: list[dict[str, Any]] = []
        self._released = threading.Event()
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        api = FastAPI()
        self._install_control_routes(api)
        self.install_routes(api)
        self.app = FaultInjector(api, self)

    # --- for subclasses -------------------------------------------------------------------------
    def install_routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    def airflow_connection(self) -> dict[str, Any]:
        """The Airflow connection (as an ``AIRFLOW_CONN_*`` JSON dict) that reaches this fake."""
        raise NotImplementedError

    def aws_service_config(self) -> dict[str, Any]:
        """``service_config`` entries for the AWS connection that route a boto3 client here."""
        return {}

    def reset_state(self) -> None:
        """Forget every resource the fake holds (subclasses)."""

    def reset(self) -> None:
        """Forget resources, journal, faults and tuned timings: a fresh fake for the next test."""
        self.release()  # nothing stays held into the next test
        with self.lock:
            self._journal.clear()
            self._faults.clear()
            for name, value in self._initial_tunables.items():
                setattr(self, name, value)
            self._progress.clear()
            self.reset_state()

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"code": code, "message": message}

    def error(self, status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse(self.error_body(code, message), status_code=status)

    def s3_client(self) -> Any:
        return moto_s3_client(self.s3_endpoint_url)

    # --- the clock that moves jobs on -----------------------------------------------------------
    @staticmethod
    def _check_clock(clock: Any) -> str:
        if clock not in CLOCKS:
            raise ValueError(f"clock: must be one of {list(CLOCKS)}, got {clock!r}")
        return clock

    def start_clock(self, job: Hashable) -> None:
        """A job (or document, or batch) starts its timeline now: at its first state."""
        with self.lock:
            self._progress[job] = {"born": time.time(), "steps": 0}

    def job_age(self, job: Hashable, stages: Sequence[float], *, read: bool = False) -> float:
        """Where a job stands on its timeline, in the fake's seconds: ``stages`` are the ages at
        which it changes state, and the fake compares the age with them as for real time.

        ``wall``: the seconds since :meth:`start_clock`. ``polls``: a status read (``read=True``)
        moves it to the next stage first. ``steps``: only :meth:`advance` moves it."""
        with self.lock:
            progress = self._progress.setdefault(job, {"born": time.time(), "steps": 0})
            if self.clock == "wall":
                return time.time() - progress["born"]
            if read and self.clock == "polls":
                progress["reads"] = progress.get("reads", 0) + 1
                if progress["reads"] % max(1, int(self.reads_per_step)) == 0:
                    progress["steps"] += 1
            # stages of zero length are passed at once, as in real time; each step ends one stage
            ends = sorted({float(s) for s in stages if s > 0})
            reached = min(progress["steps"], len(ends))
            return ends[reached - 1] if reached else 0.0

    def advance(self, job: Hashable | None = None, steps: int = 1) -> None:
        """Move one job (every job when ``job`` is None) ``steps`` states on, whatever the clock
        (under ``wall`` it is moved on as if that much time had passed: not supported)."""
        if self.clock == "wall":
            raise ValueError("advance: the fake's clock is 'wall'; configure clock='steps' or 'polls'")
        with self.lock:
            if job is not None and job not in self._progress:
                raise KeyError(f"advance: no job {job!r}")
            for key in [job] if job is not None else list(self._progress):
                self._progress[key]["steps"] += steps
        self.record("advanced", job=None if job is None else str(job), steps=steps)

    # --- journal --------------------------------------------------------------------------------
    def record(self, event: str, **data: Any) -> None:
        with self.lock:
            self._journal.append({"event": event, "ts": time.time(), **data})

    def journal_request(
        self, scope: dict, status: int | None, fault: str | None, arrived: float | None = None
    ) -> None:
        """One entry per request, written when it has been answered: ``ts`` (epoch seconds) then;
        ``arrived``: ``time.monotonic()`` when it came in (the fakes run in the test's process, so a
        test can compare it with its own monotonic clock, e.g. the gap a ``Retry-After`` asked for);
        ``client_port``: the client's port, which tells one connection from another."""
        headers = dict(scope.get("headers") or [])
        agent = headers.get(b"user-agent", b"").decode(errors="replace")
        with self.lock:
            self._journal.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode(errors="replace"),
                    "status": status,
                    "fault": fault,
                    "agent": agent,
                    "ts": time.time(),
                    "arrived": arrived,
                    "client_port": (scope.get("client") or (None, None))[1],
                }
            )

    def journal(self, event: str | None = None) -> list[dict[str, Any]]:
        """Requests and domain events so far; only the events named ``event`` when given."""
        with self.lock:
            entries = list(self._journal)
        if event is not None:
            return [e for e in entries if e.get("event") == event]
        return entries

    # --- faults ---------------------------------------------------------------------------------
    def add_fault(self, **rule: Any) -> None:
        if rule.get("action") not in FAULT_ACTIONS:
            raise ValueError(f"action: must be one of {sorted(FAULT_ACTIONS)}")
        re.compile(rule.get("path") or "")
        with self.lock:
            self._faults.append({"times": 1, **rule})

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str, agent: str = "") -> dict[str, Any] | None:
        """The first rule matching method, path and (optionally, by regex) the User-Agent."""
        with self.lock:
            for rule in self._faults:
                if rule.get("method") not in (None, method):
                    continue
                if not re.search(rule.get("path") or "", path):
                    continue
                if not re.search(rule.get("agent") or "", agent):
                    continue
                if rule.get("after", 0) > 0:  # let the first N matching requests through
                    rule["after"] -= 1
                    return None
                rule["times"] -= 1
                if rule["times"] <= 0:
                    self._faults.remove(rule)
                return rule
        return None

    # --- held requests --------------------------------------------------------------------------
    async def hold(self, scope: dict, seconds: float) -> None:
        """Keep a request (a ``hold`` fault) waiting until :meth:`release` or ``seconds`` pass."""
        with self.lock:
            released = self._released
        self.record("held", method=scope["method"], path=scope["path"])
        await asyncio.get_running_loop().run_in_executor(None, released.wait, seconds)

    def release(self) -> None:
        """Let every request held so far go on (a ``hold`` fault taken later holds again)."""
        with self.lock:
            released, self._released = self._released, threading.Event()
        released.set()

    def configure(self, **settings: Any) -> None:
        unknown = set(settings) - {*CLOCK_TUNABLES, *self.tunables}
        if unknown:
            raise ValueError(f"not tunable: {sorted(unknown)}; tunable: {[*CLOCK_TUNABLES, *self.tunables]}")
        if "clock" in settings:
            self._check_clock(settings["clock"])
        with self.lock:
            for key, value in settings.items():
                setattr(self, key, value)

    def _install_control_routes(self, app: FastAPI) -> None:
        def guarded(fn: Any, *args: Any) -> JSONResponse:
            try:
                fn(*args)
            except (TypeError, ValueError, re.error) as exc:
                return JSONResponse({"code": "BadRequest", "message": str(exc)}, status_code=400)
            return JSONResponse({"ok": True})

        @app.post("/_fake/faults")
        async def add_faults(request: Request) -> JSONResponse:
            rules = await request.json()
            rules = rules if isinstance(rules, list) else [rules]

            def add_all() -> None:
                for rule in rules:
                    self.add_fault(**rule)

            return guarded(add_all)

        @app.delete("/_fake/faults")
        async def clear_faults() -> JSONResponse:
            return guarded(self.clear_faults)

        @app.get("/_fake/journal")
        async def journal() -> JSONResponse:
            return JSONResponse(self.journal())

        @app.post("/_fake/reset")
        async def reset() -> JSONResponse:
            return guarded(self.reset)

        @app.post("/_fake/release")
        async def release() -> JSONResponse:
            return guarded(self.release)

        @app.post("/_fake/advance")
        async def advance(request: Request) -> JSONResponse:
            body = await request.json() if await request.body() else {}
            try:
                self.advance(body.get("job"), int(body.get("steps", 1)))
            except KeyError as exc:
                return JSONResponse({"code": "NotFound", "message": str(exc)}, status_code=404)
            except (TypeError, ValueError) as exc:
                return JSONResponse({"code": "BadRequest", "message": str(exc)}, status_code=400)
            return JSONResponse({"ok": True})

        @app.post("/_fake/config")
        async def configure(request: Request) -> JSONResponse:
            settings = await request.json()
            return guarded(lambda: self.configure(**settings))

    # --- serving --------------------------------------------------------------------------------
    def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
    ) -> str:
        """Serve in a thread; over HTTPS with ``ssl_certfile``/``ssl_keyfile`` (and requiring a
        client certificate signed by ``ssl_ca_certs`` when given). Returns the base URL."""
        tls: dict[str, Any] = {}
        if ssl_certfile:
            tls = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile}
            if ssl_ca_certs:
                import ssl

                tls.update(ssl_ca_certs=ssl_ca_certs, ssl_cert_reqs=ssl.CERT_REQUIRED)
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="off", **tls)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=type(self).__name__)
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start on {host}:{port}")
            time.sleep(0.01)
        bound_port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"{'https' if ssl_certfile else 'http'}://{host}:{bound_port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:  # both set by start()
            self._server.should_exit = True
            self._thread.join(10)
            self._server = None

    def __enter__(self) -> FakeService:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
