"""Documents per second into Zeta Alpha (the fake): S3ToZetaAlphaOperator against a naive loop
that posts one document per request, side by side, on the same objects in moto S3.

    .venv/bin/python benchmarks/zeta_alpha_ingest.py [--objects 10000] [--rtt-ms 20 --naive-sample 1000]

``--rtt-ms`` delays every reply of the fake's document routes by that much, for both sides:
loopback hides the round trip to a SaaS API, which is what batching and concurrency pay off on.

Target (issue 7): the operator at least 20x the naive loop.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import requests
from common import fake_stack, write_table


def seed(s3, bucket: str, prefix: str, count: int) -> None:
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: s3.put_object(
                    Bucket=bucket, Key=f"{prefix}{n:06d}.txt", Body=f"note {n}: the quick brown fox".encode()
                ),
                range(count),
            )
        )


def delay_document_routes(zeta_url: str, rtt_ms: float) -> None:
    """Every request to a document route waits ``rtt_ms`` before the fake answers (an asyncio
    sleep, so concurrent requests wait side by side, as on a real network)."""
    rule = {"action": "delay", "seconds": rtt_ms / 1000, "path": "^/v0/service/ingestion/documents"}
    reply = requests.post(f"{zeta_url}/_fake/faults", json={**rule, "times": 10**9}, timeout=10)
    reply.raise_for_status()


def naive(hook, s3, bucket: str, prefix: str, mode: str, limit: int | None) -> int:
    """What one writes without the operator: one request per document."""
    from airflow_provider_ingest.hooks.zeta_alpha import s3_document_id

    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    sent = 0
    for obj in islice((o for page in pages for o in page.get("Contents", [])), limit):
        key = obj["Key"]
        if mode == "url":
            source = {"url": s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})}
        else:
            source = {"plain_text_string": s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()}
        hook.ingest_documents(
            [
                {
                    "document_id": s3_document_id(bucket, key),
                    "uri": f"s3://{bucket}/{key}",
                    "document_content": {"content_type": "text/plain", "from_": source},
                }
            ]
        )
        sent += 1
    return sent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rtt-ms", type=float, default=0, help="added to every document-route reply")
    parser.add_argument(
        "--naive-sample", type=int, help="run the naive loop on the first K objects only (default: all)"
    )
    args = parser.parse_args()
    sample = args.naive_sample if args.naive_sample and args.naive_sample < args.objects else None
    with fake_stack() as env:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
        from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator

        s3 = S3Hook(aws_conn_id="aws_default").get_conn()
        bucket, prefix = "bench-zeta", "notes/"
        started = time.perf_counter()
        seed(s3, bucket, prefix, args.objects)
        print(f"seeded {args.objects} objects in {time.perf_counter() - started:.1f} s", flush=True)
        if args.rtt_ms:
            delay_document_routes(json.loads(env["AIRFLOW_CONN_ZETA_ALPHA_DEFAULT"])["host"], args.rtt_ms)
            print(f"every document-route reply delayed {args.rtt_ms:g} ms, for both sides", flush=True)
        if sample:
            print(f"naive loop sampled: first {sample} of {args.objects} objects (docs/s is per document)")
        results = {}
        for mode in ("inline", "url"):
            op = S3ToZetaAlphaOperator(
                task_id="bench",
                s3_prefix=f"s3://{bucket}/{prefix}",
                content_mode=mode,
                wait_for_completion=False,
            )
            started = time.perf_counter()
            sent = op.execute({})["sent"]
            operator_rate = sent / (time.perf_counter() - started)
            started = time.perf_counter()
            naive_sent = naive(ZetaAlphaHook(), s3, bucket, prefix, mode, sample)
            naive_rate = naive_sent / (time.perf_counter() - started)
            results[mode] = {
                "operator_docs_per_s": round(operator_rate),
                "naive_docs_per_s": round(naive_rate),
                "naive_docs": naive_sent,
                "speedup": round(operator_rate / naive_rate, 1),
            }
            print(mode, results[mode], flush=True)
        # the operator at its best (url) against the naive loop as usually written (inline)
        cross = round(results["url"]["operator_docs_per_s"] / results["inline"]["naive_docs_per_s"], 1)
        print(f"cross (operator url / naive inline): {cross}", flush=True)
        print(
            json.dumps(
                {
                    "objects": args.objects,
                    "cpus": os.cpu_count(),
                    "rtt_ms": args.rtt_ms,
                    "naive_sample": sample,
                    **results,
                    "cross": cross,
                }
            )
        )
        rows = "\n".join(
            f"| {mode} | {r['operator_docs_per_s']:,} | {r['naive_docs_per_s']:,} ({r['naive_docs']:,} docs) "
            f"| {r['speedup']}x |"
            for mode, r in results.items()
        )
        write_table(
            "zeta_alpha_ingest",
            f"{args.objects:,} objects, {args.rtt_ms:g} ms added to every document-route reply.\n\n"
            "| content mode | operator docs/s | naive docs/s | operator / naive |\n|---|---:|---:|---:|\n"
            f"{rows}\n\nOperator in url mode against the naive loop in inline mode: {cross}x.",
        )


if __name__ == "__main__":
    main()
