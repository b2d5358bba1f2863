"""Loads a gatehouse release from S3 the way a training script does, with Hugging Face
`datasets` (JSON and Parquet) over s3fs, and checks it against the manifest.

Usage: load_release.py ENDPOINT BUCKET RELEASE_PREFIX
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints one JSON summary
line (counts and ids only, never text); exits 1 on any mismatch.
"""

import json
import os
import sys

import s3fs
from datasets import load_dataset


def main():
    endpoint, bucket, prefix = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
    options = {
        "key": os.environ["AWS_ACCESS_KEY_ID"],
        "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    fs = s3fs.S3FileSystem(**options)
    with fs.open(f"{bucket}/{prefix}/manifest.json", "rb") as f:
        manifest = json.load(f)

    problems, summary = [], {"splits": {}}
    for c in manifest["contents"]:
        split = c["split"]
        # The ids in export order, from the JSONL shards themselves.
        ids = []
        for shard in c["shards"]:
            with fs.open(f"{bucket}/{shard['key']}", "rb") as f:
                ids.extend(json.loads(line)["id"] for line in f if line.strip())
        if len(ids) != c["records"]:
            problems.append(f"{split}: {len(ids)} JSONL lines, manifest says {c['records']}")
        got = {}
        for fmt, files in (("json", c["shards"]), ("parquet", c.get("parquet", []))):
            if not files:
                problems.append(f"{split}: no {fmt} files in the manifest")
                continue
            urls = [f"s3://{bucket}/{s['key']}" for s in files]
            # `datasets` mutates storage_options: a fresh copy per call.
            ds = load_dataset(
                fmt,
                data_files={split: urls},
                split=split,
                storage_options=json.loads(json.dumps(options)),
            )
            if ds.num_rows != c["records"]:
                problems.append(f"{split} {fmt}: {ds.num_rows} rows, manifest says {c['records']}")
            if list(ds["id"]) != ids:
                problems.append(f"{split} {fmt}: ids differ from the JSONL shards")
            first = ds[0]["messages"]
            if not (isinstance(first, list) and set(first[0]) == {"role", "content"}):
                problems.append(f"{split} {fmt}: messages is not a list of {{role, content}}")
            got[fmt] = ds.num_rows
        summary["splits"][split] = {"manifest": c["records"], **got}
    summary["problems"] = problems
    print(json.dumps(summary, sort_keys=True))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
