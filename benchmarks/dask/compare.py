#!/usr/bin/python3
"""compare: the JSON-lines plumbing of scripts/bench_dask (standard library only).

    compare.py tag SYSTEM ROUND < lines > lines   add "system" and "round" to each line
    compare.py validate FILE                      fail unless FILE is well-formed results
    compare.py table FILE                         print lumen/Dask ratios per metric
    compare.py markdown FILE                      the same as a Markdown table, with the
                                                  range over rounds and Ray's published
                                                  2.48 figures (docs/performance.md)

Lines are those of lumen's benchmarks (bench_util.h) and of dask_bench.py. A line without
"system" is lumen's. A Dask line may have "value": null, with a "note" saying why Dask
has no figure for that metric.
"""

import json
import math
import statistics
import sys

UNITS = ("tasks/s", "calls/s", "us", "GB/s", "%")
REQUIRED = {"name": str, "unit": str, "runs": int, "machine": dict}
NUMBERS = ("value", "median", "min", "max")


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tag(system, round_number):
    """Copies JSON lines from stdin to stdout, adding system and round (a filter)."""
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        record.setdefault("system", system)
        record["round"] = int(round_number)
        print(json.dumps(record), flush=True)


def check(record):
    """Returns what is wrong with one result line, or None."""
    for key, kind in REQUIRED.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            return "field %r missing or mistyped" % key
    if record["unit"] not in UNITS:
        return "unknown unit %r" % record["unit"]
    if record.get("value") is None:
        if record.get("system") != "dask" or not record.get("note"):
            return "value null without system dask and a note"
        return None
    values = [record.get(k) for k in NUMBERS]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "value/median/min/max missing or mistyped"
    if not all(math.isfinite(v) and v > 0 for v in values):
        return "value/median/min/max must be finite and > 0"
    if not record["min"] <= record["median"] <= record["max"]:
        return "median not within [min, max]"
    for key in ("cores", "memory_gb", "cpu_model"):
        if key not in record["machine"]:
            return "machine.%s missing" % key
    return None


def validate(path):
    count = 0
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit("bench_dask: %s:%d: not JSON (%s)" % (path, number, e))
            problem = check(record) if isinstance(record, dict) else "not a JSON object"
            if problem:
                sys.exit("bench_dask: %s:%d: %s" % (path, number, problem))
            count += 1
    systems = {r.get("system", "lumen") for r in read_lines(path)}
    if count == 0:
        sys.exit("bench_dask: %s: no results" % path)
    print("bench_dask: %d results valid (%s)" % (count, ", ".join(sorted(systems))),
          file=sys.stderr)


# Ray 2.48.0's published `ray microbenchmark` figures (one Python driver on a 64-vCPU
# m5.16xlarge), by lumen's metric name, in lumen's units.
RAY_2_48 = {
    "single_client_tasks_sync": 981,
    "single_client_tasks_async": 8041,
    "multi_client_tasks_async": 21230,
    "1_1_actor_calls_sync": 2012,
    "1_1_actor_calls_async": 8664,
    "n_n_actor_calls_async": 27376,
    "single_client_put_calls": 5173,
    "single_client_get_calls": 10620,
    "single_client_put_gigabytes": 19.9,
}


def medians(records):
    """{(system, name): (median over rounds or None, unit, note, rounds)}."""
    grouped = {}
    for r in records:
        grouped.setdefault((r.get("system", "lumen"), r["name"]), []).append(r)
    out = {}
    for key, rs in grouped.items():
        values = [r["value"] for r in rs if r.get("value") is not None]
        note = next((r["note"] for r in rs if r.get("note")), None)
        out[key] = (statistics.median(values) if values else None, rs[0]["unit"], note,
                    len(rs))
    return out


def table(path):
    records = read_lines(path)
    by_key = medians(records)
    names = []
    for r in records:  # lumen's order first, then Dask-only metrics
        if r["name"] not in names and r.get("system", "lumen") == "lumen":
            names.append(r["name"])
    names += [n for n in dict.fromkeys(r["name"] for r in records) if n not in names]
    rounds = max((r.get("round", 1) for r in records), default=1)

    print("\nlumen vs Dask, medians over %d round(s) (%s)" % (rounds, path))
    print("%-46s %8s %14s %14s %11s" % ("metric", "unit", "lumen", "Dask", "lumen/Dask"))
    notes = {}
    for name in names:
        lumen, unit, _, _ = by_key.get(("lumen", name), (None, None, None, 0))
        dask, dask_unit, note, dask_rounds = by_key.get(("dask", name), (None, None, None, 0))
        unit = unit or dask_unit
        if note:
            notes[name] = note
        if lumen is not None and dask is not None:
            ratio = fmt(lumen / dask)
            if unit == "us":
                ratio += " (lower is better)"
            if note:
                ratio += " (see note)"
        elif dask_rounds and dask is None:
            ratio = "no Dask figure (see note)"
        elif not dask_rounds:
            ratio = "not measured for Dask"
        else:
            ratio = "no lumen figure"
        print("%-46s %8s %14s %14s   %s" % (name, unit, fmt(lumen), fmt(dask), ratio))
    if notes:
        print("\nNotes on the Dask side:")
        for name, note in notes.items():
            print("  %s: %s" % (name, note))
    print("\nlumen/Dask > 1: lumen higher (better, except for us, where lower is better). "
          "memcpy_* is the machine's copy bandwidth, measured by both: its ratio shows "
          "how much the machine changed between the two.")


def markdown(path):
    """Per metric: median over rounds (lowest - highest round) for each system, the ratio
    of the medians (lowest - highest ratio within a round), and Ray's published figure."""
    records = read_lines(path)
    values = {}  # (system, name) -> {round: value}
    units, notes, names = {}, {}, []
    for r in records:
        system = r.get("system", "lumen")
        units.setdefault(r["name"], r["unit"])
        if r.get("note") and system == "dask":
            notes[r["name"]] = r["note"]
        if system == "lumen" and r["name"] not in names:
            names.append(r["name"])
        if r.get("value") is not None:
            values.setdefault((system, r["name"]), {})[r.get("round", 1)] = r["value"]
    rounds = max((r.get("round", 1) for r in records), default=1)

    def cell(series):
        if not series:
            return "–"
        v = sorted(series.values())
        text = "**%s**" % fmt(statistics.median(v))
        return text + (" (%s – %s)" % (fmt(v[0]), fmt(v[-1])) if len(v) > 1 else "")

    print("| metric | unit | lumen, median of %d round%s (range) | Dask, same rounds | "
          "lumen/Dask (range over rounds) | Ray 2.48, published (64 vCPUs) |"
          % (rounds, "" if rounds == 1 else "s"))
    print("|---|---|---:|---:|---:|---:|")
    for name in names:
        lumen = values.get(("lumen", name), {})
        dask = values.get(("dask", name), {})
        if name.startswith("memcpy_"):
            ratio = "the machine's copy speed, measured by both"
        elif lumen and dask:
            # Latencies: how many times lower lumen's is (Dask/lumen), so that > 1 is
            # better for lumen in every row.
            better = (lambda a, b: b / a) if units[name] == "us" else (lambda a, b: a / b)
            per_round = sorted(better(lumen[k], dask[k]) for k in lumen if k in dask)
            ratio = fmt(better(statistics.median(lumen.values()),
                               statistics.median(dask.values()))) + "×"
            if len(per_round) > 1:
                ratio += " (%s – %s)" % (fmt(per_round[0]), fmt(per_round[-1]))
            if units[name] == "us":
                ratio += " lower"
        elif name in notes:
            ratio = "no Dask counterpart"
        else:
            ratio = "–"
        ray = "{:,}".format(RAY_2_48[name]) if name in RAY_2_48 else "–"
        print("| `%s` | %s | %s | %s | %s | %s |" % (name, units[name], cell(lumen), cell(dask),
                                                 ratio, ray))


def fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return "{:,.0f}".format(value)
    return "{:,.1f}".format(value) if abs(value) >= 10 else "%.3g" % value


def main(argv):
    if len(argv) == 3 and argv[0] == "tag":
        tag(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "validate":
        validate(argv[1])
    elif len(argv) == 2 and argv[0] == "table":
        table(argv[1])
    elif len(argv) == 2 and argv[0] == "markdown":
        markdown(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
