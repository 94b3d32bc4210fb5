"""Does a faster S3 timestamp parser pay off at a real round trip? Listing a prefix through botocore's
S3 client with its default timestamp parser (dateutil-based) and with a standard-library parser
patched into the client's private ``_endpoint._response_parser_factory``, and what that is worth
in a whole Zeta Alpha ingest of the same prefix.

    .venv/bin/python benchmarks/s3_listing.py [--objects 10000] [--rtt-ms 20] [--repeats 5]

How it measures:
- moto S3 and the fakes run in their own process (``fake_stack``); every S3 request goes through a
  delay line in a third process: each chunk of bytes, either way, is passed on ``rtt / 2`` after it
  arrived, so every request/response costs one round trip (as on a kept-alive connection to S3).
  The Zeta Alpha fake delays its document routes by the same round trip (as
  ``benchmarks/zeta_alpha_ingest.py --rtt-ms`` does).
- Listing pages are moto's, recorded once (a warm-up listing) and then answered by the delay line
  from memory after the round trip: moto takes ~0.5 s to build a page of 1000 keys, S3 far less,
  and that time would hide the parser's share. So S3's own time per page counts as zero here,
  which favours the patch.
- Listing: the operator's paging (``list_objects_v2``, 1000 keys a page) over the whole prefix,
  ``--repeats`` times per parser, alternating which goes first; each run uses a new client, made
  before the clock starts, and a full garbage collection before it too (one that falls inside a
  run costs ~0.1 s, on either side at random). Wall time and this process's CPU time (the
  parser's cost is CPU, and CPU time is less disturbed by other work on the machine).
- Ingest: ``S3ToZetaAlphaOperator(content_mode="url", wait_for_completion=False).execute()``
  over the same prefix, with and without the patched parser (alternating), and with the listing
  taken out (the objects listed beforehand). url mode is the fastest ingest (no object is read),
  so there the listing is the largest share.
- Reported: the median and the range of each; the listing time the patch saves as a share of the
  ingest and of the ingest without listing (an upper bound); and the ingests' own difference
  (noisier: a difference of two longer runs).

The patch is ``with_fast_timestamps`` in ``operators/zeta_alpha.py`` (issue 19: a private botocore
interface stays only if a user would notice the difference; it was kept). The benchmark imports it
from there, so it measures what ships.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from common import fake_stack, write_table
from zeta_alpha_ingest import delay_document_routes, seed

# the operator's own: the benchmark measures what ships
from airflow_provider_ingest.operators.zeta_alpha import with_fast_timestamps


# --- the delay line -------------------------------------------------------------------------------
async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    first: bytes = b"",
    record: list[bytes] | None = None,
) -> None:
    """Pass ``first`` and then every chunk on ``delay`` s after it arrived, in order (latency, not
    a bandwidth cap); append what passed to ``record`` if given."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    if first:
        queue.put_nowait((loop.time() + delay, first))
    try:
        while data := await reader.read(1 << 16):
            if record is not None:
                record.append(data)
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    try:
        await sender
    except ConnectionError:
        pass


async def _serve_delay_line(upstream: str, rtt_ms: float) -> None:
    """Relay to ``upstream`` with ``rtt_ms`` added to every request. A listing page moto has
    answered once (same request target: bucket, prefix, page size, continuation token) is
    answered again from memory, after the round trip: moto spends ~0.5 s building a page of 1000
    keys, which S3 does not, and which would hide the parser's share. moto closes every
    connection after its reply, so a reply is everything up to the close."""
    host, port = upstream.rsplit(":", 1)
    one_way = rtt_ms / 2000
    pages: dict[bytes, bytes] = {}

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        head = b""
        while b"\r\n\r\n" not in head and (chunk := await client_reader.read(1 << 16)):
            head += chunk
        target = head.split(b" ", 2)[1] if head.startswith(b"GET ") else b""
        listing = b"list-type=2" in target
        try:
            if listing and target in pages:
                await asyncio.sleep(2 * one_way)
                client_writer.write(pages[target])
                await client_writer.drain()
                return
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
            reply: list[bytes] = []
            try:
                await asyncio.gather(
                    _relay(client_reader, server_writer, one_way, first=head),
                    _relay(server_reader, client_writer, one_way, record=reply),
                )
            finally:
                server_writer.close()
            if listing and b"".join(reply[:1]).startswith(b"HTTP/1.1 200 "):
                pages[target] = b"".join(reply)
        finally:
            client_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start_delay_line(upstream_url: str, rtt_ms: float) -> tuple[subprocess.Popen[str], str]:
    """A delay line in front of ``upstream_url`` in its own process; returns it and its URL."""
    parts = urlsplit(upstream_url)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--delay-line", parts.netloc, "--rtt-ms", str(rtt_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"{parts.scheme}://127.0.0.1:{port}"


# --- the measurements -----------------------------------------------------------------------------
def list_prefix(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """The whole prefix as the operator lists it: ``list_objects_v2`` pages of 1000 keys."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}
    )
    return [o for page in pages for o in page.get("Contents", [])]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument(
        "--rtt-ms", type=float, default=20, help="round trip added to every S3 and document request"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement per parser")
    parser.add_argument(
        "--modes", nargs="+", choices=["url", "inline"], default=["url"], help="content modes to ingest in"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md")
    parser.add_argument("--delay-line", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.delay_line:
        asyncio.run(_serve_delay_line(args.delay_line, args.rtt_ms))
        return

    with fake_stack() as env:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator

        # Each side makes its own client, whether or not the installed operator patches its own.
        class DefaultOperator(S3ToZetaAlphaOperator):
            @cached_property
            def s3(self) -> Any:
                return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

        class PatchedOperator(S3ToZetaAlphaOperator):
            @cached_property
            def s3(self) -> Any:
                return with_fast_timestamps(S3Hook(aws_conn_id=self.aws_conn_id).get_conn())

        class PrelistedOperator(DefaultOperator):
            """The ingest with the listing taken out: the objects come from a list made beforehand."""

            objects: list[dict[str, Any]] = []

            def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
                return iter(self.objects)

        bucket, prefix = "bench-listing", "notes/"
        started = time.perf_counter()
        seed(S3Hook(aws_conn_id="aws_default").get_conn(), bucket, prefix, args.objects)
        print(f"seeded {args.objects} objects in {time.perf_counter() - started:.1f} s", flush=True)

        aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
        delay_line, delayed_url = start_delay_line(aws["extra"]["endpoint_url"], args.rtt_ms)
        try:
            aws["extra"]["endpoint_url"] = delayed_url
            os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(aws)
            delay_document_routes(json.loads(env["AIRFLOW_CONN_ZETA_ALPHA_DEFAULT"])["host"], args.rtt_ms)
            print(f"every S3 and document request: {args.rtt_ms:g} ms round trip added", flush=True)

            # The first listing through the delay line: moto builds the pages, the delay line keeps them.
            PrelistedOperator.objects = list_prefix(
                S3Hook(aws_conn_id="aws_default").get_conn(), bucket, prefix
            )
            clients = {
                "botocore default": lambda: S3Hook(aws_conn_id="aws_default").get_conn(),
                "patched": lambda: with_fast_timestamps(S3Hook(aws_conn_id="aws_default").get_conn()),
            }
            operators = {"botocore default": DefaultOperator, "patched": PatchedOperator}
            variants = [*operators, "listing taken out"]
            operators["listing taken out"] = PrelistedOperator
            listing: dict[str, list[float]] = {name: [] for name in clients}
            listing_cpu: dict[str, list[float]] = {name: [] for name in clients}
            ingest = {mode: {name: list[float]() for name in variants} for mode in args.modes}
            ingest_cpu = {mode: {name: list[float]() for name in variants} for mode in args.modes}
            for run in range(args.repeats):
                order = list(clients) if run % 2 == 0 else list(reversed(clients))  # neither always first
                for name in order:
                    s3 = clients[name]()
                    gc.collect()  # a full collection of this heap costs ~0.1 s: not in one side only
                    started, cpu_started = time.perf_counter(), time.process_time()
                    listed = len(list_prefix(s3, bucket, prefix))
                    listing[name].append(time.perf_counter() - started)
                    listing_cpu[name].append(time.process_time() - cpu_started)
                    assert listed == args.objects, listed
                for mode in args.modes:
                    for name in [*order, "listing taken out"]:
                        op = operators[name](
                            task_id="bench",
                            s3_prefix=f"s3://{bucket}/{prefix}",
                            content_mode=mode,
                            wait_for_completion=False,
                        )
                        gc.collect()
                        started, cpu_started = time.perf_counter(), time.process_time()
                        sent = op.execute({})["sent"]
                        ingest[mode][name].append(time.perf_counter() - started)
                        ingest_cpu[mode][name].append(time.process_time() - cpu_started)
                        assert sent == args.objects, sent
                print(
                    f"run {run + 1}: listing "
                    + ", ".join(f"{n} {listing[n][-1]:.2f} s" for n in clients)
                    + "".join(
                        f"; ingest {mode} "
                        + ", ".join(
                            f"{n} {times[-1]:.2f} s ({ingest_cpu[mode][n][-1]:.2f} s CPU)"
                            for n, times in by.items()
                        )
                        for mode, by in ingest.items()
                    ),
                    flush=True,
                )
        finally:
            delay_line.terminate()
            delay_line.wait(10)

    median = statistics.median
    saved = median(listing["botocore default"]) - median(listing["patched"])
    saved_cpu = median(listing_cpu["botocore default"]) - median(listing_cpu["patched"])
    shares = {
        mode: {
            "listing_saved_share_of_ingest": saved / median(by["botocore default"]),
            "listing_saved_share_of_ingest_without_listing": saved / median(by["listing taken out"]),
            "ingest_saved_share": 1 - median(by["patched"]) / median(by["botocore default"]),
            "ingest_cpu_saved_share": 1
            - median(ingest_cpu[mode]["patched"]) / median(ingest_cpu[mode]["botocore default"]),
        }
        for mode, by in ingest.items()
    }
    print(
        json.dumps(
            {
                "objects": args.objects,
                "rtt_ms": args.rtt_ms,
                "repeats": args.repeats,
                "cpus": os.cpu_count(),
                "listing_s": listing,
                "listing_cpu_s": listing_cpu,
                "ingest_s": ingest,
                "ingest_cpu_s": ingest_cpu,
                "listing_saved_s": saved,
                "listing_cpu_saved_s": saved_cpu,
                "shares": shares,
            }
        )
    )
    rows = "\n".join(
        f"| {name} | {spread(listing[name]) if name in listing else '-'} "
        f"| {spread(listing_cpu[name]) if name in listing else '-'} | "
        + " | ".join(
            f"{spread(ingest[mode][name])} | {spread(ingest_cpu[mode][name])}" for mode in args.modes
        )
        + " |"
        for name in variants
    )
    verdicts = "\n".join(
        f"- {mode} mode: the listing time saved is {100 * share['listing_saved_share_of_ingest']:.1f}% of "
        f"the ingest ({100 * share['listing_saved_share_of_ingest_without_listing']:.1f}% of the ingest "
        f"with the listing taken out); the ingest itself, patched against default: "
        f"**{100 * share['ingest_saved_share']:+.1f}%** of its time, "
        f"**{100 * share['ingest_cpu_saved_share']:+.1f}%** of its CPU."
        for mode, share in shares.items()
    )
    table = (
        f"{args.objects:,} keys under one prefix, {args.rtt_ms:g} ms round trip added to every S3 and "
        f"document request, {args.repeats} runs each: median (range).\n\n"
        "| timestamp parser | list the prefix | its CPU | "
        + " | ".join(f"Zeta Alpha ingest, {mode} mode | its CPU" for mode in args.modes)
        + " |\n|---|---:|---:|"
        + "---:|---:|" * len(args.modes)
        + f"\n{rows}\n\nThe patched parser saves {saved:.2f} s of listing ({saved_cpu:.2f} s CPU).\n\n"
        + verdicts
    )
    print(table)
    if not args.no_write:
        write_table("s3_listing", table)


if __name__ == "__main__":
    main()
