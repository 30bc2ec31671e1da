#!/usr/bin/python3
"""dask_bench: lumen's microbenchmarks written for Dask distributed, to compare the two.

Run (Debian's python3-distributed and python3-numpy; scripts/bench_dask installs them
and runs this program alternately with lumen's benchmarks):

    /usr/bin/python3 benchmarks/dask/dask_bench.py [--group tasks|actors|objects|all]
        [--runs N] [--seconds S] [--warmup S] [--quick] [--filter TEXT] [--sweep]
        [--lumen-num-cpus=N]

Use /usr/bin/python3: Debian's Dask is installed for the system interpreter, not for
another python3 earlier on PATH.

The metrics carry the names of lumen's (benchmarks/tasks_bench.cc, actors_bench.cc,
objects_bench.cc) and measure the same workload, written the way Dask's documentation
writes it: a LocalCluster of worker processes (one per core, like lumen's num_cpus, or
--lumen-num-cpus), one thread each, dashboard off, the client talking to the workers
directly (direct_to_workers=True); a no-op function returning 0;
client.submit(..., pure=False) (so that Dask does not merge identical calls into one
task) and client.gather; Dask actors (client.submit(Class, actor=True)); scatter and
gather for objects. Where a metric differs from lumen's in substance, its JSON line says
how in "note"; where Dask has no counterpart, the line has "value": null and a note.

Timing is bench_util.h's (Ray's timeit): per metric a warm-up of --warmup s (at least one
call), then --runs runs, each calling the operation back to back for at least --seconds;
a run's figure is items done / elapsed. Latencies: p50 and p99 of single round trips per
run (at least 200 per run), then the median over runs.

stdout holds one JSON object per metric, as lumen's benchmarks print, plus
"system": "dask" and, where it applies, "note" and "n". Notes go to stderr.
"""

import argparse
import json
import logging
import os
import resource
import signal
import statistics
import sys
import time

import numpy as np
from distributed import Client, LocalCluster, get_client, wait, worker_client
from distributed.client import FIRST_COMPLETED

MIN_LATENCY_SAMPLES = 200  # per run, as bench_util.h's kMinLatencySamples
MIB = 1 << 20
GB = 1e9

# The batch sizes of lumen's benchmarks.
ASYNC_BATCH = 10000  # single_client_tasks_async
GET_BATCH = 1000  # single_client_tasks_and_get_batch
WAIT_REFS = 1000  # single_client_wait_1k_refs
CLIENTS = 4  # multi_client_tasks_async: m
CLIENT_TASKS = 10000  # multi_client_tasks_async: n per client (--quick: 1,000)
QUICK_CLIENT_TASKS = 1000
CONTAINED_REFS = 10000  # single_client_get_object_containing_10k_refs
ACTOR_BATCH = 1000  # 1_1_actor_calls_async, _concurrent, _with_1kib_arg
ONE_TO_N_CALLS = 5000  # 1_n_actor_calls_async, per server
N_TO_N_TASKS = 4  # n_n_actor_calls_async
N_TO_N_CALLS = 5000  # n_n_actor_calls_async, per task
ARG_BYTES = 1024  # 1_1_actor_calls_with_1kib_arg
SMALL_PUT_CLIENTS = 4  # multi_client_put_calls: m
SMALL_PUTS = 1000  # multi_client_put_calls: puts per call
LARGE_PUT_CLIENTS = 2  # multi_client_put_gigabytes: m
LARGE_PUTS = 4  # multi_client_put_gigabytes: puts per call
LARGE_PUT_BYTES = 100 * MIB  # multi_client_put_gigabytes (--quick: 10 MiB)
QUICK_LARGE_PUT_BYTES = 10 * MIB
INFLIGHT = [1, 4, 16, 64, 256, 1024, 4096, 16384]  # tasks_async_inflight_<k>
QUICK_INFLIGHT = [1, 64]

NOTES = {
    "single_client_tasks_sync": (
        "the Dask client sends to the scheduler in batches at most every 10 ms "
        "(BatchedSend interval in distributed/client.py), which bounds one-at-a-time "
        "round trips to about 100/s"),
    "single_client_task_latency_p50": "see single_client_tasks_sync (10 ms client batching)",
    "single_client_task_latency_p99": "see single_client_tasks_sync (10 ms client batching)",
    "single_client_wait_1k_refs": (
        "distributed.wait(FIRST_COMPLETED) returns every finished future; one is taken per "
        "call so that there are 1,000 waits, like lumen's Wait(refs, 1) (as_completed "
        "would be Dask's cheaper way to take them one by one)"),
    "multi_client_tasks_async": (
        "the m clients are tasks that submit through worker_client() (Dask's way to submit "
        "from a task; it secedes from the worker's thread pool), not actors"),
    "single_client_get_object_containing_10k_refs": (
        "Dask objects cannot hold futures; the nearest is a list of 10,000 scattered "
        "futures published on the scheduler (publish_dataset), each call a get_dataset "
        "that returns 10,000 live futures: a scheduler round trip, where lumen's Get reads "
        "the driver's own store"),
    "1_1_actor_calls_concurrent": (
        "Dask has no threaded actors (one actor thread per worker); the concurrent method "
        "is an async def, which Dask runs concurrently on the worker's event loop"),
    "1_n_actor_calls_async": (
        "the client actor's method is async def: a blocking one would hold the worker's "
        "only actor thread while it waits for its servers"),
    "n_n_actor_calls_with_arg_async": (
        "no Dask equivalent: Dask does not resolve futures passed to actor methods "
        "(Worker.actor_execute hands them over as they are), so the method would have to "
        "fetch the value itself; written so (await get_client().gather(x) in the server), "
        "1,000 calls in flight per client did not finish in 170 s with Dask 2022.12 here "
        "(300 took 0.6 s)"),
    "single_client_put_calls": (
        "scatter(hash=False) of an int: a round trip to the scheduler and a worker; "
        "lumen keeps small values in the driver's own store"),
    "single_client_get_calls": (
        "gather of a scattered int: fetched from the worker on every call; lumen reads "
        "the driver's own store"),
    "multi_client_put_calls": (
        "m client actors scatter from inside their workers (the value stays in that "
        "worker's memory, plus a message to the scheduler); Dask runs one actor method at "
        "a time per worker, so with more actors than workers they take turns"),
    "multi_client_put_gigabytes": (
        "m client actors (one per worker) scatter a numpy array they hold; a scatter from "
        "inside a worker keeps a reference to the array in that worker's memory (no copy, "
        "one message to the scheduler), where lumen copies the value into the node's "
        "shared-memory store, so the GB/s are not the same work"),
}
LARGE_PUT_NOTE = (
    "scatter(hash=False) of a numpy uint8 array: serialized and sent over TCP to a worker "
    "process, which keeps it in its heap (Dask has no shared-memory store); lumen copies "
    "once into the node's shared memory. Same operation (a large value into the cluster), "
    "different mechanism")
LARGE_GET_NOTE = (
    "gather of a scattered numpy array: a copy over TCP from the worker; lumen's Get is a "
    "view of shared memory, whose cost does not depend on the size")
GET_LATENCY_NOTE = (
    "not measured: a Dask gather of this size is a full copy over TCP (its time is the size "
    "over get_gigabytes_* GB/s), and 200 round trips per run would take minutes; lumen's "
    "figure is the latency of a constant-time view")


# ---------------------------------------------------------------- options, machine

def parse_options(argv):
    parser = argparse.ArgumentParser(
        description="lumen's microbenchmarks for Dask distributed; JSON lines on stdout.")
    parser.add_argument("--group", choices=["tasks", "actors", "objects", "all"],
                        default="all", help="which benchmark program's metrics (default all)")
    parser.add_argument("--runs", type=int, help="measured runs per metric (5; --quick: 1)")
    parser.add_argument("--seconds", type=float, help="minimum run length (2; --quick: 0.2)")
    parser.add_argument("--warmup", type=float, help="warm-up per metric (1; --quick: 0.1)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: short runs")
    parser.add_argument("--filter", default="", help="only metrics whose name contains TEXT")
    parser.add_argument("--sweep", action="store_true",
                        help="also the in-flight sweep tasks_async_inflight_<k>")
    parser.add_argument("--lumen-num-cpus", type=int, dest="workers",
                        help="number of Dask workers (default: the machine's cores)")
    # Other --lumen-* flags belong to lumen's programs (scripts/bench_dask passes the same
    # arguments to both); they are accepted and ignored here.
    args, unknown = parser.parse_known_args(argv)
    bad = [a for a in unknown if not a.startswith("--lumen-")]
    if bad:
        parser.error("unknown arguments: " + " ".join(bad))
    defaults = (1, 0.2, 0.1) if args.quick else (5, 2.0, 1.0)
    args.runs = defaults[0] if args.runs is None else args.runs
    args.seconds = defaults[1] if args.seconds is None else args.seconds
    args.warmup = defaults[2] if args.warmup is None else args.warmup
    if args.runs < 1 or args.seconds < 0 or args.warmup < 0:
        parser.error("--runs must be >= 1, --seconds and --warmup >= 0")
    return args


def detect_machine():
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "memory_gb": round(pages * page_size / 2**30, 1),
            "cpu_model": model}


def log(text):
    print(text, file=sys.stderr, flush=True)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_times():
    """Machine-wide (busy, steal, total) ticks from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def own_cpu_seconds():
    """CPU time of this process and its reaped children (the Dask workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def describe_cpu_use(start, end, own_seconds):
    total = end[2] - start[2]
    if total <= 0:
        return "unknown"
    ticks = os.sysconf("SC_CLK_TCK")
    return "%.0f%% busy (%.0f%% this benchmark), %.0f%% stolen" % (
        100 * (end[0] - start[0]) / total, 100 * own_seconds * ticks / total,
        100 * (end[1] - start[1]) / total)


# ---------------------------------------------------------------- timing and output

def rounded(x):
    """One decimal, as lumen prints; three significant digits for values below 10."""
    return round(x, 1) if abs(x) >= 10 else float("%.3g" % x)


def percentile(sorted_values, p):
    """Nearest-rank percentile, as bench_util.h's Percentile."""
    rank = min(max(int(-(-p * len(sorted_values) // 100)), 1), len(sorted_values))
    return sorted_values[rank - 1]


class Bench:
    """bench_util.h's Bench: selection, Ray-style timing and the JSON lines."""

    def __init__(self, options, machine):
        self.options = options
        self.machine = machine

    @property
    def quick(self):
        return self.options.quick

    def selected(self, name):
        return not self.options.filter or self.options.filter in name

    def selected_sweep(self, name, tag):
        """Sweeps run only with --sweep, or with a --filter that names them."""
        if self.options.sweep:
            return self.selected(name)
        return tag in self.options.filter and self.selected(name)

    def _repeat(self, fn, seconds):
        start = time.perf_counter()
        fn()
        while time.perf_counter() - start < seconds:
            fn()

    def throughput(self, name, unit, items_per_call, fn, **extra):
        """Warm up, then --runs runs of fn() back to back for >= --seconds each."""
        if not self.selected(name):
            return None
        self._repeat(fn, self.options.warmup)
        values = []
        for _ in range(self.options.runs):
            start = time.perf_counter()
            calls = 0
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= self.options.seconds:
                    break
            values.append(items_per_call * calls / elapsed)
        self.emit(name, unit, values, **extra)
        return statistics.median(values)

    def latency(self, prefix, round_trip):
        """p50 and p99 in us of single round trips, per run; medians over runs."""
        names = (prefix + "_p50", prefix + "_p99")
        if not any(self.selected(n) for n in names):
            return
        self._repeat(round_trip, self.options.warmup)
        p50s, p99s = [], []
        for run in range(self.options.runs):
            samples = []
            start = time.perf_counter()
            while (time.perf_counter() - start < self.options.seconds
                   or len(samples) < MIN_LATENCY_SAMPLES):
                t0 = time.perf_counter()
                round_trip()
                samples.append((time.perf_counter() - t0) * 1e6)
            samples.sort()
            p50s.append(percentile(samples, 50))
            p99s.append(percentile(samples, 99))
            log("  run %d: %d round trips" % (run + 1, len(samples)))
        for name, values in zip(names, (p50s, p99s)):
            if self.selected(name):
                self.emit(name, "us", values)

    def emit(self, name, unit, values, note=None, n=None):
        median = rounded(statistics.median(values))
        record = {"name": name, "value": median, "unit": unit, "runs": len(values),
                  "median": median, "min": rounded(min(values)), "max": rounded(max(values)),
                  "machine": self.machine, "system": "dask"}
        note = note or NOTES.get(name)
        if note:
            record["note"] = note
        if n is not None:
            record["n"] = n
        print(json.dumps(record), flush=True)
        log("%-34s median %10s %-7s (min %s, max %s; runs: %s)" % (
            name, median, unit, record["min"], record["max"],
            " ".join(str(rounded(v)) for v in values)))

    def emit_none(self, name, unit, note):
        """A metric Dask cannot measure as lumen does: value null and the reason."""
        if not self.selected(name):
            return
        record = {"name": name, "value": None, "unit": unit, "runs": 0, "median": None,
                  "min": None, "max": None, "machine": self.machine, "system": "dask",
                  "note": note}
        print(json.dumps(record), flush=True)
        log("%-34s no Dask figure: %s" % (name, note))


# ---------------------------------------------------------------- tasks

def small_value():
    """The no-op task (lumen's SmallValue)."""
    return 0


def check_values(values, count, expected):
    if len(values) != count or any(v != expected for v in values):
        raise RuntimeError("wrong results")


def sync_task(client):
    if client.submit(small_value, pure=False).result() != 0:
        raise RuntimeError("wrong task result")


def submit_and_gather(client, n):
    futures = [client.submit(small_value, pure=False) for _ in range(n)]
    check_values(client.gather(futures), n, 0)


def wait_one_by_one(client, n):
    """Ray's wait_multiple_refs: wait for one finished future at a time."""
    unready = [client.submit(small_value, pure=False) for _ in range(n)]
    waits = 0
    while unready:
        done, not_done = wait(unready, return_when=FIRST_COMPLETED)
        done = list(done)
        unready = list(not_done) + done[1:]
        waits += 1
    if waits != n:
        raise RuntimeError("wrong number of waits")


def client_batch(n):
    """One of multi_client_tasks_async's clients: a task that submits n tasks."""
    with worker_client() as client:
        futures = [client.submit(small_value, pure=False) for _ in range(n)]
        check_values(client.gather(futures), n, 0)
    return n


def run_tasks(bench, client):
    bench.throughput("single_client_tasks_sync", "tasks/s", 1, lambda: sync_task(client))
    bench.throughput("single_client_tasks_async", "tasks/s", ASYNC_BATCH,
                     lambda: submit_and_gather(client, ASYNC_BATCH))
    bench.throughput("single_client_tasks_and_get_batch", "tasks/s", GET_BATCH,
                     lambda: submit_and_gather(client, GET_BATCH))
    bench.throughput("single_client_wait_1k_refs", "tasks/s", WAIT_REFS,
                     lambda: wait_one_by_one(client, WAIT_REFS))
    bench.latency("single_client_task_latency", lambda: sync_task(client))

    if bench.selected("multi_client_tasks_async"):
        n = QUICK_CLIENT_TASKS if bench.quick else CLIENT_TASKS
        log("dask_bench: multi_client_tasks_async: m = %d client tasks, n = %d tasks each"
            % (CLIENTS, n))

        def multi_client():
            futures = [client.submit(client_batch, n, pure=False) for _ in range(CLIENTS)]
            check_values(client.gather(futures), CLIENTS, n)

        bench.throughput("multi_client_tasks_async", "tasks/s", CLIENTS * n, multi_client)

    if bench.selected("single_client_get_object_containing_10k_refs"):
        inner = client.scatter(list(range(CONTAINED_REFS)), hash=False)
        client.publish_dataset(refs_10k=inner)

        def get_containing():
            if len(client.get_dataset("refs_10k")) != CONTAINED_REFS:
                raise RuntimeError("wrong number of futures")

        bench.throughput("single_client_get_object_containing_10k_refs", "calls/s", 1,
                         get_containing)
        client.unpublish_dataset("refs_10k")
        del inner

    for k in QUICK_INFLIGHT if bench.quick else INFLIGHT:
        name = "tasks_async_inflight_%d" % k
        if bench.selected_sweep(name, "inflight"):
            bench.throughput(name, "tasks/s", k, lambda k=k: submit_and_gather(client, k))


# ---------------------------------------------------------------- actors

class BenchActor:
    """lumen's BenchActor: no-op methods."""

    def small_value(self):
        return 0

    async def small_value_async(self):
        return 0

    def small_value_bytes(self, data):
        return len(data)


class ClientActor:
    """Ray's Client: an actor that calls other actors (async: see NOTES)."""

    def __init__(self, servers):
        self.servers = servers

    async def small_value_batch(self, n):
        futures = [s.small_value() for s in self.servers for _ in range(n)]
        values = [await f for f in futures]
        check_values(values, len(futures), 0)
        return len(values)


def nn_work(actors, n):
    """Ray's `work` task of n:n actor calls: n calls round-robin over the actors."""
    futures = [actors[i % len(actors)].small_value() for i in range(n)]
    check_values([f.result() for f in futures], n, 0)
    return n


class Actors:
    """One metric's actors: placed round-robin over the workers (lumen gives each actor a
    process of its own; Dask actors live in the workers), released at the end."""

    def __init__(self, client):
        self.client = client
        self.workers = sorted(client.scheduler_info()["workers"])
        self.futures = []

    def new(self, cls, *args):
        worker = self.workers[len(self.futures) % len(self.workers)]
        future = self.client.submit(cls, *args, actor=True, pure=False, workers=[worker])
        self.futures.append(future)
        return future.result()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.futures.clear()


def call_all(actor, method, n, *args):
    """n calls of actor.method(*args), all in flight, then their results."""
    futures = [getattr(actor, method)(*args) for _ in range(n)]
    return [f.result() for f in futures]


def sync_call(actor):
    if actor.small_value().result() != 0:
        raise RuntimeError("wrong call result")


def run_actors(bench, client):
    n = max(2, os.cpu_count() // 2)  # as actors_bench
    log("dask_bench: n = %d server actors for the 1:n and n:n metrics" % n)

    if bench.selected("1_1_actor_calls_sync"):
        with Actors(client) as actors:
            actor = actors.new(BenchActor)
            bench.throughput("1_1_actor_calls_sync", "calls/s", 1, lambda: sync_call(actor))
    for name, method in (("1_1_actor_calls_async", "small_value"),
                         ("1_1_actor_calls_concurrent", "small_value_async")):
        if bench.selected(name):
            with Actors(client) as actors:
                actor = actors.new(BenchActor)
                bench.throughput(name, "calls/s", ACTOR_BATCH, lambda: check_values(
                    call_all(actor, method, ACTOR_BATCH), ACTOR_BATCH, 0))
    if bench.selected("1_n_actor_calls_async"):
        with Actors(client) as actors:
            servers = [actors.new(BenchActor) for _ in range(n)]
            owner = actors.new(ClientActor, servers)
            bench.throughput("1_n_actor_calls_async", "calls/s", ONE_TO_N_CALLS * n,
                             lambda: check_values(
                                 [owner.small_value_batch(ONE_TO_N_CALLS).result()],
                                 1, ONE_TO_N_CALLS * n), n=n)
    if bench.selected("n_n_actor_calls_async"):
        with Actors(client) as actors:
            servers = [actors.new(BenchActor) for _ in range(n)]

            def n_to_n():
                futures = [client.submit(nn_work, servers, N_TO_N_CALLS, pure=False)
                           for _ in range(N_TO_N_TASKS)]
                check_values(client.gather(futures), N_TO_N_TASKS, N_TO_N_CALLS)

            bench.throughput("n_n_actor_calls_async", "calls/s", N_TO_N_TASKS * N_TO_N_CALLS,
                             n_to_n, n=n)
    bench.emit_none("n_n_actor_calls_with_arg_async", "calls/s",
                    NOTES["n_n_actor_calls_with_arg_async"])
    if bench.selected("1_1_actor_calls_with_1kib_arg"):
        with Actors(client) as actors:
            actor = actors.new(BenchActor)
            data = b"x" * ARG_BYTES
            bench.throughput("1_1_actor_calls_with_1kib_arg", "calls/s", ACTOR_BATCH,
                             lambda: check_values(call_all(actor, "small_value_bytes",
                                                           ACTOR_BATCH, data),
                                                  ACTOR_BATCH, ARG_BYTES))
    if bench.selected("actor_call_latency_p50") or bench.selected("actor_call_latency_p99"):
        with Actors(client) as actors:
            actor = actors.new(BenchActor)
            bench.latency("actor_call_latency", lambda: sync_call(actor))


# ---------------------------------------------------------------- objects

class PutClient:
    """lumen's PutClient: an actor holding a value of `size` bytes to scatter."""

    def __init__(self, size):
        self.value = np.full(size, 7, dtype=np.uint8)

    def put_small(self, n):
        client = get_client()
        for _ in range(n):
            client.scatter(0, hash=False)
        return n

    def put_value(self, n):
        client = get_client()
        for _ in range(n):
            client.scatter(self.value, hash=False)
        return n


def measure_memcpy(bench, name, size):
    source, target = np.full(size, 1, dtype=np.uint8), np.zeros(size, dtype=np.uint8)
    return bench.throughput(name, "GB/s", size / GB, lambda: np.copyto(target, source),
                            note="np.copyto between two touched arrays: the machine's "
                                 "baseline, as lumen's memcpy")


def measure_put(bench, client, name, size, copy_gbps):
    value = np.full(size, 7, dtype=np.uint8)
    put = bench.throughput(name, "GB/s", size / GB,
                           lambda: client.scatter(value, hash=False), note=LARGE_PUT_NOTE)
    if put and copy_gbps:
        bench.emit(name + "_vs_memcpy", "%", [100.0 * put / copy_gbps], note=LARGE_PUT_NOTE)


def measure_get(bench, client, name, size):
    future = client.scatter(np.full(size, 9, dtype=np.uint8), hash=False)

    def get():
        if client.gather(future).nbytes != size:
            raise RuntimeError("wrong size")

    bench.throughput(name, "GB/s", size / GB, get, note=LARGE_GET_NOTE)
    for suffix in ("_latency_p50", "_latency_p99"):
        bench.emit_none(name + suffix, "us", GET_LATENCY_NOTE)


def measure_multi_client_puts(bench, client):
    for name, m, size, puts, method in (
            ("multi_client_put_calls", SMALL_PUT_CLIENTS, 0, SMALL_PUTS, "put_small"),
            ("multi_client_put_gigabytes", LARGE_PUT_CLIENTS,
             QUICK_LARGE_PUT_BYTES if bench.quick else LARGE_PUT_BYTES, LARGE_PUTS,
             "put_value")):
        if not bench.selected(name):
            continue
        log("dask_bench: %s: m = %d actors, %d puts each of %d bytes" % (name, m, puts, size))
        with Actors(client) as actors:
            clients = [actors.new(PutClient, size) for _ in range(m)]

            def call_all_clients():
                calls = [getattr(c, method)(puts) for c in clients]
                check_values([call.result() for call in calls], m, puts)

            unit, items = ("calls/s", m * puts) if size == 0 else ("GB/s", m * puts * size / GB)
            bench.throughput(name, unit, items, call_all_clients)


def run_objects(bench, client):
    bench.throughput("single_client_put_calls", "calls/s", 1,
                     lambda: client.scatter(0, hash=False))
    small = client.scatter(0, hash=False)
    bench.throughput("single_client_get_calls", "calls/s", 1, lambda: client.gather(small))

    sizes = [100 * MIB] if bench.quick else [100 * MIB, 1024 * MIB]
    for size in sizes:
        label = "1gib" if size >= 1024 * MIB else "100mib"
        copy = measure_memcpy(bench, "memcpy_gigabytes_" + label, size)
        measure_put(bench, client, "put_gigabytes_" + label, size, copy)
        measure_get(bench, client, "get_gigabytes_" + label, size)
    if not bench.quick:
        copy = measure_memcpy(bench, "memcpy_gigabytes_800mib", 800 * MIB)
        measure_put(bench, client, "single_client_put_gigabytes", 800 * MIB, copy)
    measure_multi_client_puts(bench, client)


# ---------------------------------------------------------------- main

def start_cluster(workers):
    """A LocalCluster of `workers` processes with one thread each, quiet, no dashboard.

    The client talks to the workers directly (direct_to_workers=True) for gathers and
    actor calls, rather than through the scheduler: about 3x the actor calls/s here.
    """
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return cluster, Client(cluster, direct_to_workers=True)


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through main's finally, which closes the cluster


def main(argv):
    options = parse_options(argv)
    machine = detect_machine()
    workers = options.workers or machine["cores"]
    log("dask_bench: %d cores, %.1f GiB, %s; load average %s" % (
        machine["cores"], machine["memory_gb"], machine["cpu_model"], load_average()))
    log("dask_bench: %d run(s) of >= %.2f s per metric, %.2f s warm-up%s; LocalCluster of %d "
        "worker processes x 1 thread" % (options.runs, options.seconds, options.warmup,
                                         " (quick)" if options.quick else "", workers))
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, stop_on_sigterm)

    cpu_start, own_start = cpu_times(), own_cpu_seconds()
    cluster, client = start_cluster(workers)
    bench = Bench(options, machine)
    groups = {"tasks": run_tasks, "actors": run_actors, "objects": run_objects}
    status = 0
    try:
        for group, run in groups.items():
            if options.group in (group, "all"):
                run(bench, client)
    except Exception as e:  # report and still close the cluster
        log("dask_bench: failed: %r" % e)
        status = 1
    except KeyboardInterrupt:
        log("dask_bench: interrupted")
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the cancelled gathers
        status = 130
    finally:
        client.close(timeout=10)
        cluster.close(timeout=10)
    own = own_cpu_seconds() - own_start
    log("dask_bench: done; load average %s; CPU of the machine: %s" % (
        load_average(), describe_cpu_use(cpu_start, cpu_times(), own)))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
