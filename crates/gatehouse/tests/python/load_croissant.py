"""Reads a published gatehouse release through its Croissant metadata with `mlcroissant`,
the MLCommons reference loader: validates `croissant.json` and streams every record of the
record set `conversations`, then checks the count and the ids against the manifest.

Usage: load_croissant.py RELEASE_DIR
Prints one JSON summary line (counts, warnings and problems; never record text); exits 1 on
any mismatch or validation error.
"""

import json
import os
import sys

import mlcroissant as mlc


def main():
    release = sys.argv[1]
    os.chdir(release)  # shard paths in croissant.json are relative to the release folder
    with open("manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    problems = []
    dataset = mlc.Dataset(jsonld="croissant.json")  # raises on a validation error
    warnings = [str(w) for w in dataset.metadata.ctx.issues.warnings]
    ids, messages = [], 0
    for record in dataset.records(record_set="conversations"):
        ids.append(record["conversations/id"].decode())
        turns = record["conversations/messages"]
        messages += len(turns)
        for m in turns:
            if m["conversations/messages/role"].decode() not in ("system", "user", "assistant"):
                problems.append(f"record {ids[-1]}: a message role outside ChatML")
    expected = sum(c["records"] for c in manifest["contents"])
    if len(ids) != expected:
        problems.append(f"{len(ids)} records read, the manifest lists {expected}")
    if len(set(ids)) != len(ids):
        problems.append("duplicate ids")
    print(json.dumps({
        "conforms_to": dataset.metadata.ctx.conforms_to.value,
        "records": len(ids),
        "messages": messages,
        "warnings": warnings,
        "problems": problems,
    }))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
