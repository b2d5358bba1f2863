"""The Ray driver: argument parsing, Ray start-up, and the subcommands.

``build`` builds a release draft on Ray, the same bytes as ``gatehouse build``:

1. the driver plans the build and clears the draft (``Build.prepare``);
2. a Ray Data actor pool maps the source objects, one batch of object indices (key order) at
   a time, into fragments in the store (``Build.map``: adapt, normalise, redact, sign,
   count; GIL released);
3. near duplicates: tasks turn the fragments into band rows (``Build.band_rows``: band,
   band key, record; no text), Ray's ``groupby`` shuffles them by partition (a function of
   the band key, so every LSH bucket lands whole in one partition), and a task per
   partition judges its buckets in Rust (``Build.judge``);
4. the driver finishes (``Build.finish``): the clustering in rank order over the judged
   pairs, the merge in key order, shards, reports, manifest.

Fragments carry a fingerprint of the object and the settings, so a re-run resumes from
completed map work, and a killed actor's batch, run again, gives the same fragment; a
partition judged again gives the same report. Nothing is named by Ray: fragments are named by
object index, partitions by band key, shards by the build.

``list`` is the smoke path: it lists the store through the wheel (as coverage lists it) and
digests every object in Ray tasks, with Ray Data ``map_batches`` over Arrow batches calling
the native kernel ``digest_batch``.

Each subcommand prints one JSON document on stdout. Timings and Ray's own logging go to
stderr. Nothing printed is object content.
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
        help="Ray cluster to attach to: HOST:PORT, or `auto` for the one `ray start` "
        "started on this host (default: $RAY_ADDRESS, else start a local one for this run)",
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
        help="build a release draft with the map on Ray (same bytes as `gatehouse build`)",
        description="Plan the build of VERSION (the same inputs and settings as `gatehouse "
        "build`; the draft is cleared), map its source objects into fragments in the store "
        "in a Ray Data actor pool (fragments already made for this build are reused: a "
        "re-run resumes), then finish on the driver: duplicates, the merge in key order, "
        "shards, reports and manifest. Prints a JSON summary (release digest, objects "
        "mapped and reused, seconds per step) on stdout; then run `gatehouse gates` on the "
        "draft as after `gatehouse build`.",
    )
    b.add_argument("--release-version", required=True, help="the version to build")
    b.add_argument(
        "--batch-size", type=int, default=1, help="objects per Ray Data batch (default 1)"
    )
    b.add_argument(
        "--actors",
        type=int,
        default=None,
        help="map actors, one CPU each (default: the cluster's CPUs, at most one per object)",
    )
    b.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="partitions of the band rows for the near-duplicate shuffle (default: 4 per "
        "map actor; more keeps each partition smaller in memory)",
    )
    b.add_argument(
        "--judge-on-driver",
        action="store_true",
        help="skip the shuffle: judge near-duplicate candidates on the driver during the "
        "finish, as `gatehouse build` does (less overhead on small stores; same release)",
    )
    return p


# Fault injection for the tests (tests/ray.rs): when set to a path, the first map actor
# that creates that file kills itself with `ray.kill` after its fragments are written and
# before its result is returned, so Ray Data must restart the actor and run the batch again;
# and the first judge task that creates that path + ".judge" ends its worker process, so
# Ray must run the partition again.
FAULT_KILL_ONE_ACTOR = "GATEHOUSE_RAY_FAULT_KILL_ONE_ACTOR"

# How often a map actor is restarted, and its batch retried, after it dies.
MAX_RESTARTS = 3


class _MapObjects:
    """A Ray Data actor of the build's map stage: it holds one native ``Build`` (the
    registry loaded and the PII detector built once per actor) and maps the objects of each
    batch (their indices in key order) into fragments in the store."""

    def __init__(self, store: _native.Store, version: str, kill_marker: str | None):
        self._build = _native.Build(store, version)
        self._kill_marker = kill_marker

    def __call__(self, batch):
        import pyarrow as pa

        indices = [int(i) for i in batch.column("id").to_pylist()]
        mapped, reused = self._build.map(indices)
        if self._kill_marker:
            _kill_self_once(self._kill_marker)
        return pa.table({"mapped": [mapped], "reused": [reused]})


# One native `Build` per worker process and build, made by the first task that needs it
# and kept for the next (Ray reuses a worker process for the tasks of a job): the registry
# is loaded and the detector built once, and a judge keeps the fragments' sketches and
# shingle sets it has read. The near-duplicate stages run as tasks, not actor pools: an
# actor holds its CPU for the whole stage, and the shuffle's reduce tasks between the two
# stages would wait for a CPU that the judges hold while they wait for the reduce.
_BUILDS: dict = {}


def _build_for(store: _native.Store, version: str) -> _native.Build:
    import pickle

    key = (pickle.dumps(store), version)
    build = _BUILDS.get(key)
    if build is None:
        build = _BUILDS[key] = _native.Build(store, version)
    return build


def _band_rows(batch, store: _native.Store, version: str, parts: int):
    """A Ray Data task: the band rows of a batch of objects, read from their fragments."""
    indices = [int(i) for i in batch.column("id").to_pylist()]
    return _build_for(store, version).band_rows(indices, parts)


def _judge_partition(
    rows, store: _native.Store, version: str, parts: int, kill_marker: str | None
):
    """A Ray Data task: judges the LSH buckets of one partition of band rows (one group of
    ``groupby("part")``)."""
    if kill_marker:
        _crash_once(kill_marker + ".judge")
    return _build_for(store, version).judge(rows, parts)


def _first_to_claim(marker: str) -> bool:
    """Whether this call created `marker`: true for one caller only."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _crash_once(marker: str) -> None:
    """The first task to create `marker` ends its worker process, as a crash does."""
    if _first_to_claim(marker):
        os._exit(1)


def _kill_self_once(marker: str) -> None:
    import ray

    if not _first_to_claim(marker):
        return
    ray.kill(ray.get_runtime_context().current_actor, no_restart=False)
    time.sleep(120)  # killed during this sleep; the batch's result is never returned
    raise RuntimeError(f"{FAULT_KILL_ONE_ACTOR}: ray.kill did not stop this actor")


def cmd_build(args: argparse.Namespace) -> int:

    store = _store(args)
    version = args.release_version
    driver = _native.Build(store, version)
    # Ray first: a cluster that cannot be reached must not cost the draft prepare clears.
    ray, init_s = _init_ray(args)
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # A map error (a gatehouse error naming the key) ends the build as itself, not wrapped.
    ctx.raise_original_map_exception = True
    # The groupby of band rows by partition as a sort shuffle run in tasks: Ray 2.60's hash
    # shuffle (aggregator actors) took 10.5 s for this stage at 100k conversations on 2
    # CPUs, the sort shuffle 5.2 s.
    ctx.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    t0 = time.monotonic()
    objects = driver.prepare()
    prepare_s = time.monotonic() - t0
    actors = args.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))

    t1 = time.monotonic()
    mapped = reused = 0
    if objects:
        ds = ray.data.from_arrow(_index_blocks(objects, args.batch_size)).map_batches(
            _MapObjects,
            fn_constructor_args=(store, version, os.environ.get(FAULT_KILL_ONE_ACTOR)),
            batch_format="pyarrow",
            batch_size=args.batch_size,
            concurrency=min(actors, objects),
            num_cpus=1,
            # A killed or crashed actor is restarted and its batch run again (the fragment
            # is reused or made again), a few times, not forever: an object that kills
            # every actor it meets (out of memory, say) ends the build.
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_RESTARTS,
        )
        for row in ds.iter_rows():
            mapped += row["mapped"]
            reused += row["reused"]
    map_s = time.monotonic() - t1

    t2 = time.monotonic()
    judged, parts, partitions_judged = None, 0, 0
    if objects and not args.judge_on_driver:
        parts = max(1, args.partitions or 4 * actors)
        judged, partitions_judged = _judge_near_duplicates(
            ray, store, version, objects, parts, args.batch_size
        )
    shuffle_s = time.monotonic() - t2
    t3 = time.monotonic()
    digest = driver.finish(judged)
    finish_s = time.monotonic() - t3
    _print_summary(
        {
            "release_version": version,
            "release_digest": digest,
            "objects": objects,
            "mapped": mapped,
            "reused": reused,
            "actors": min(actors, objects),
            "near_duplicates": "on the driver" if judged is None else "shuffled",
            "partitions": partitions_judged,
            "seconds": {
                "prepare": round(prepare_s, 3),
                "ray_init": round(init_s, 3),
                "map": round(map_s, 3),
                "shuffle": round(shuffle_s, 3),
                "finish": round(finish_s, 3),
            },
        }
    )
    print(
        f"gatehouse_ray build: {objects} objects ({mapped} mapped, {reused} reused) on "
        f"{min(actors, objects)} actors; {partitions_judged} partitions judged; prepare "
        f"{prepare_s:.2f} s, ray.init {init_s:.2f} s, map {map_s:.2f} s, shuffle "
        f"{shuffle_s:.2f} s, finish {finish_s:.2f} s",
        file=sys.stderr,
    )
    return EXIT_OK


def _index_blocks(objects: int, step: int):
    """The object indices 0..objects as in-memory blocks of `step` each: no read tasks (an
    actor pool holding every CPU would starve them) and one block per actor call."""
    import pyarrow as pa

    step = max(1, step)
    return [
        pa.table({"id": pa.array(range(i, min(i + step, objects)), pa.uint64())})
        for i in range(0, objects, step)
    ]


def _judge_near_duplicates(ray, store, version, objects, parts, batch_size):
    """Band rows out of the fragments, shuffled by partition with Ray's groupby, each
    partition's buckets judged in a task; returns the judged partitions' tables (none when
    there were no band rows; the finish checks that against the fragments) and how many
    partitions there were."""

    rows = ray.data.from_arrow(_index_blocks(objects, batch_size)).map_batches(
        _band_rows,
        fn_kwargs={"store": store, "version": version, "parts": parts},
        batch_format="pyarrow",
        batch_size=batch_size,
        num_cpus=1,
        max_retries=MAX_RESTARTS,
    )
    judged = rows.groupby("part").map_groups(
        _judge_partition,
        fn_kwargs={
            "store": store,
            "version": version,
            "parts": parts,
            "kill_marker": os.environ.get(FAULT_KILL_ONE_ACTOR),
        },
        batch_format="pyarrow",
        num_cpus=1,
        max_retries=MAX_RESTARTS,
    )
    tables = [ray.get(ref) for ref in judged.to_arrow_refs()]
    tables = [t for t in tables if t.num_rows]
    return tables, sum(t.num_rows for t in tables)


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
        # "local" starts a cluster for this run even when one was started on this host with
        # `ray start`; attach to that one with --address auto.
        address=args.address or "local",
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
    _print_summary(summary)
    print(
        f"gatehouse_ray list: {len(rows)} objects; listed in {listed_s:.2f} s, "
        f"ray.init {init_s:.2f} s, digests {digest_s:.2f} s "
        f"(cluster CPUs: {ray.cluster_resources().get('CPU', 0):g})",
        file=sys.stderr,
    )
    return EXIT_OK if not missing else EXIT_ERROR


# The JSON summary's stream: the process's stdout as it was when `main` started. Everything
# else written to stdout afterwards (Ray forwards its workers' and raylet's log lines to the
# driver's stdout) goes to stderr, so stdout holds the one JSON document and nothing else.
_summary_out = None


def _print_summary(summary: dict) -> None:
    out = _summary_out or sys.stdout
    json.dump(summary, out, indent=2, sort_keys=True)
    out.write("\n")
    out.flush()


def _keep_stdout_for_the_summary() -> None:
    global _summary_out
    sys.stdout.flush()
    _summary_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _keep_stdout_for_the_summary()
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "build":
            return cmd_build(args)
    except Exception as e:  # a gatehouse error, perhaps raised in a worker and wrapped by Ray
        cause = _gatehouse_error(e)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


def _gatehouse_error(e: BaseException | None) -> BaseException | None:
    """The gatehouse error `e` is, or wraps (Ray wraps a worker's exception in its own)."""
    for _ in range(16):
        if e is None or isinstance(e, _native.GatehouseError):
            return e
        e = e.__cause__ or getattr(e, "cause", None)
    return None
