"""The Ray driver: argument parsing, Ray start-up, and the subcommands.

``list`` is the smoke path of issue 21: it lists the store through the wheel (as coverage
lists it) and digests every object in Ray tasks, with Ray Data ``map_batches`` over Arrow
batches calling the native kernel ``digest_batch`` (GIL released inside). It prints one JSON
document on stdout: the objects sorted by key, with size and ``sha256:`` digest. Timings and
Ray's own logging go to stderr. Nothing printed is object content.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import _native

EXIT_OK = 0
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gatehouse_ray",
        description="gatehouse on Ray (preview): the core's kernels in Ray tasks.",
    )
    p.add_argument("--version", action="version", version=f"gatehouse {_native.version()}")
    store = p.add_argument_group(
        "store",
        "resolved like the gatehouse CLI's global flags: flag > environment "
        "(DATASET_*, OVH_S3_*, ...) > gatehouse.toml > default",
    )
    store.add_argument("--config", help="gatehouse.toml (default: ./gatehouse.toml if present)")
    store.add_argument("--backend", choices=["local", "s3"])
    store.add_argument("--local-path", help="local store directory")
    store.add_argument("--bucket")
    store.add_argument("--endpoint")
    store.add_argument("--region")
    store.add_argument("--exports-prefix")
    ray_ = p.add_argument_group("ray")
    ray_.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to attach to (default: $RAY_ADDRESS, else start a local one)",
    )
    ray_.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of a local cluster started here (ignored with --address)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ls = sub.add_parser(
        "list",
        help="list objects and digest each one in Ray tasks (smoke path)",
        description="List objects under PREFIX through the wheel and compute each object's "
        "sha256 in Ray Data tasks; print a JSON summary sorted by key.",
    )
    ls.add_argument("--prefix", default="", help="key prefix (default: the whole store)")
    ls.add_argument(
        "--batch-size", type=int, default=16, help="objects per Ray Data batch (default 16)"
    )
    b = sub.add_parser(
        "build",
        help="build a release draft with the map in Ray tasks (same bytes as `gatehouse build`)",
        description="Plan the build of VERSION (the same inputs and settings as `gatehouse "
        "build`), map its source objects into fragments in the store in Ray Data tasks "
        "(fragments already made for this build are reused: a re-run resumes), then finish "
        "on the driver: duplicates, the merge in key order, reports and manifest. Prints "
        "the release digest as JSON.",
    )
    b.add_argument("--release-version", required=True, help="the version to build")
    b.add_argument(
        "--batch-size", type=int, default=1, help="objects per Ray Data batch (default 1)"
    )
    return p


def cmd_build(args: argparse.Namespace) -> int:
    import pyarrow as pa

    store = _store(args)
    version = args.release_version
    t0 = time.monotonic()
    objects = _native.build_prepare(store, version)
    prepare_s = time.monotonic() - t0

    ray, init_s = _init_ray(args)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False

    def map_objects(batch: pa.Table) -> pa.Table:
        # Runs in a Ray worker: `store` arrives pickled and reopens there.
        indices = [int(i) for i in batch.column("id").to_pylist()]
        mapped, reused = _native.build_map(store, version, indices)
        return pa.table({"mapped": [mapped], "reused": [reused]})

    t1 = time.monotonic()
    mapped = reused = 0
    if objects:
        ds = ray.data.range(objects).map_batches(
            map_objects, batch_format="pyarrow", batch_size=args.batch_size
        )
        for row in ds.iter_rows():
            mapped += row["mapped"]
            reused += row["reused"]
    map_s = time.monotonic() - t1
    t2 = time.monotonic()
    digest = _native.build_finish(store, version)
    finish_s = time.monotonic() - t2
    json.dump(
        {
            "release_version": version,
            "release_digest": digest,
            "objects": objects,
            "mapped": mapped,
            "reused": reused,
        },
        sys.stdout,
        indent=2,
        sort_keys=True,
    )
    sys.stdout.write("\n")
    print(
        f"gatehouse_ray build: {objects} objects ({mapped} mapped, {reused} reused); "
        f"prepare {prepare_s:.2f} s, ray.init {init_s:.2f} s, map {map_s:.2f} s, "
        f"finish {finish_s:.2f} s",
        file=sys.stderr,
    )
    return EXIT_OK


def _store(args: argparse.Namespace) -> _native.Store:
    return _native.Store(
        config=args.config,
        local_path=args.local_path,
        backend=args.backend,
        bucket=args.bucket,
        endpoint=args.endpoint,
        region=args.region,
        exports_prefix=args.exports_prefix,
    )


def _init_ray(args: argparse.Namespace):
    import ray

    started = time.monotonic()
    ray.init(
        address=args.address or None,
        num_cpus=None if args.address else args.num_cpus,
        include_dashboard=False,
        log_to_driver=True,
        logging_level="WARNING",
    )
    return ray, time.monotonic() - started


def cmd_list(args: argparse.Namespace) -> int:
    import pyarrow as pa

    store = _store(args)
    t0 = time.monotonic()
    listing = _native.list_objects(store, args.prefix)
    listing = listing.sort_by("key")
    listed_s = time.monotonic() - t0
    unusable = int((listing.schema.metadata or {}).get(b"gatehouse.unusable_keys", b"0"))

    ray, init_s = _init_ray(args)
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False

    def digest(batch: pa.Table) -> pa.Table:
        # Runs in a Ray worker: `store` arrives pickled and reopens there.
        return _native.digest_batch(store, batch)

    t1 = time.monotonic()
    rows = []
    if listing.num_rows:
        ds = ray.data.from_arrow(listing.select(["key"])).map_batches(
            digest, batch_format="pyarrow", batch_size=args.batch_size
        )
        tables = [ray.get(ref) for ref in ds.to_arrow_refs()]
        digests = pa.concat_tables(tables).sort_by("key") if tables else None
        if digests is not None:
            rows = digests.to_pylist()
    digest_s = time.monotonic() - t1

    by_key = {r["key"]: r for r in rows}
    expected = listing.column("key").to_pylist()
    missing = [k for k in expected if k not in by_key]
    summary = {
        "gatehouse": _native.version(),
        "store": store.describe(),
        "prefix": args.prefix,
        "objects": [
            {"key": r["key"], "size": r["size"], "digest": r["digest"]}
            for r in sorted(rows, key=lambda r: r["key"])
        ],
        "count": len(rows),
        "bytes": sum(r["size"] for r in rows),
        "unusable_keys": unusable,
        "missing": missing,
    }
    json.dump(summary, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    print(
        f"gatehouse_ray list: {len(rows)} objects; listed in {listed_s:.2f} s, "
        f"ray.init {init_s:.2f} s, digests {digest_s:.2f} s "
        f"(cluster CPUs: {ray.cluster_resources().get('CPU', 0):g})",
        file=sys.stderr,
    )
    return EXIT_OK if not missing else EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "build":
            return cmd_build(args)
    except _native.GatehouseError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR
