"""Documents per second into Zeta Alpha (the fake): S3ToZetaAlphaOperator against a naive loop
that posts one document per request, side by side, on the same objects in moto S3.

    .venv/bin/python benchmarks/zeta_alpha_ingest.py [--objects 10000]

Target (issue 7): the operator at least 20x the naive loop.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from common import fake_stack


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


def naive(hook, s3, bucket: str, prefix: str, mode: str) -> int:
    """What one writes without the operator: one request per document."""
    from airflow_provider_ingest.hooks.zeta_alpha import s3_document_id

    sent = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if mode == "url":
                source = {
                    "url": s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
                }
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
    args = parser.parse_args()
    with fake_stack():
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
        from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator

        s3 = S3Hook(aws_conn_id="aws_default").get_conn()
        bucket, prefix = "bench-zeta", "notes/"
        started = time.perf_counter()
        seed(s3, bucket, prefix, args.objects)
        print(f"seeded {args.objects} objects in {time.perf_counter() - started:.1f} s", flush=True)
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
            naive_sent = naive(ZetaAlphaHook(), s3, bucket, prefix, mode)
            naive_rate = naive_sent / (time.perf_counter() - started)
            results[mode] = {
                "operator_docs_per_s": round(operator_rate),
                "naive_docs_per_s": round(naive_rate),
                "speedup": round(operator_rate / naive_rate, 1),
            }
            print(mode, results[mode], flush=True)
        print(json.dumps({"objects": args.objects, "cpus": os.cpu_count(), **results}))


if __name__ == "__main__":
    main()
