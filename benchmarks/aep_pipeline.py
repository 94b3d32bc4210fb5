"""S3 (moto server) -> Parquet -> AEP fake for a generated CSV, against pyarrow's bare CSV ->
Parquet conversion of the same file, each side in its own child process (peak RSS per side).

    .venv/bin/python benchmarks/aep_pipeline.py [--mb 500]

Targets (issue 6): the operator at least 0.7x the bare conversion's MB/s; peak RSS under 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from common import fake_stack, write_table

BUCKET, KEY = "bench-aep", "events/big.csv"
LINE = "2026-03-01T00:{m:02d}:00Z,City{c},s{i},{i},{s:.3f},{b}\n"


def generate(path: str, megabytes: int) -> int:
    with open(path, "w") as out:
        out.write("timestamp,city,session,session_length,score,active\n")
        i = 0
        while out.tell() < megabytes * 1_000_000:
            out.write(
                "".join(
                    LINE.format(
                        m=(i + k) % 60, c=(i + k) % 7, i=i + k, s=(i + k) / 3, b="true" if k % 2 else "false"
                    )
                    for k in range(10_000)
                )
            )
            i += 10_000
    return os.path.getsize(path)


def child(side: str, path: str) -> None:
    """One side, in this process: prints seconds and peak RSS as JSON. Imports and set-up happen
    before the clock starts, so only the pipeline itself is timed."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if side == "operator":
        from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
        from airflow_provider_ingest.testing.adobe_aep import DATASET_ID

        operator = S3ToAdobeAepOperator(
            task_id="bench",
            dataset_id=DATASET_ID,
            s3_keys=[f"s3://{BUCKET}/{KEY}"],
            input_format="csv",
            wait_for_completion=False,
        )
        operator.s3  # noqa: B018 - build the S3 client before timing
        operator.hook.client  # noqa: B018
    out, extra = tempfile.mktemp(suffix=".parquet"), {}
    started = time.perf_counter()
    if side == "bare":
        reader = pcsv.open_csv(path)
        with pq.ParquetWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    else:
        extra["parquet_mb"] = operator.execute({})["bytes"] / 1e6
    seconds = time.perf_counter() - started
    if os.path.exists(out):  # the bare side's output: not kept
        extra["parquet_mb"] = os.path.getsize(out) / 1e6
        os.unlink(out)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                **extra,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--child", choices=["bare", "operator"])
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.path)
    with fake_stack():
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        path = tempfile.mktemp(suffix=".csv")
        size = generate(path, args.mb)
        s3 = S3Hook(aws_conn_id="aws_default").get_conn()
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(path, BUCKET, KEY)
        print(f"input: {size / 1e6:.0f} MB CSV in moto S3", flush=True)
        results = {}
        for side in ("bare", "operator"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", side, "--path", path],
                capture_output=True,
                text=True,
                check=True,
                env=os.environ,
            )
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            measured["mb_per_s"] = round(size / 1e6 / measured["seconds"], 1)
            results[side] = {k: round(v, 1) for k, v in measured.items()}
            print(side, results[side], flush=True)
        os.unlink(path)
        ratio = results["operator"]["mb_per_s"] / results["bare"]["mb_per_s"]
        print(json.dumps({"input_mb": round(size / 1e6), **results, "operator_vs_bare": round(ratio, 2)}))
        bare, op = results["bare"], results["operator"]
        write_table(
            "aep_pipeline",
            "| input CSV | bare s (MB/s) | operator s (MB/s) | operator / bare | peak RSS bare / operator "
            "| Parquet bare / operator |\n|---|---|---|---|---|---|\n"
            f"| {size / 1e6:.0f} MB | {bare['seconds']} ({bare['mb_per_s']}) "
            f"| {op['seconds']} ({op['mb_per_s']}) | {ratio:.2f}x "
            f"| {bare['peak_rss_mb']:.0f} / {op['peak_rss_mb']:.0f} MB "
            f"| {bare.get('parquet_mb', 0):.0f} / {op.get('parquet_mb', 0):.0f} MB |",
        )


if __name__ == "__main__":
    main()
