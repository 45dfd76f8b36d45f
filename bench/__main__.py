"""``make bench``: every benchmark, one table, one chart, one JSON.

    .venv/bin/python -m bench            # full size (~34 minutes here)
    BENCH_SCALE=0.1 .venv/bin/python -m bench   # a quick run

Runs ingest as a user meets it (``bench.ingest_up``), ingest from a backlog
(``bench.ingest_bench``), HTTP ingest (``bench.http_ingest_bench``), query
(``bench.query_bench``, at 1M and 10M events) and stream (``bench.stream_bench``) one
after another (never in parallel: they would measure each other), then writes
``bench/results/latest.json`` (name -> value, unit, peer, ratio), ``latest.md`` (the
table) and ``latest.png`` (the chart).
"""

from __future__ import annotations

import json
import sys
import time

import matplotlib

matplotlib.use("Agg")  # no display: render to a file

import matplotlib.pyplot as plt

from bench import http_ingest_bench, ingest_bench, ingest_up, query_bench, stream_bench
from bench.figures import RESULTS, Figure, machine, scale, scaled, table


def chart(figures: list[Figure], path: str) -> None:
    """Left: throughputs beside their peer or limit. Right: query p95 at the largest
    size against the 100 ms target."""
    rates = [f for f in figures if f.unit in ("events/s", "rows/s")]
    sizes = {f.name.split(".")[1] for f in figures if f.name.startswith("query.")} - {"export"}
    largest = max(sizes, key=_m)
    queries = [f for f in figures if f.name.startswith(f"query.{largest}.")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 8), gridspec_kw={"width_ratios": [1, 1]})
    names = [f.name for f in rates]
    y = range(len(rates))
    left.barh([i + 0.2 for i in y], [f.value for f in rates], 0.4, label="authtrail")
    left.barh(
        [i - 0.2 for i in y], [f.peer or 0 for f in rates], 0.4, label="peer / limit, same run"
    )
    left.set_yticks(list(y), names, fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("per second (log scale)")
    left.set_title("Throughput")
    left.legend(loc="lower right")
    right.barh(
        [f.name.split(".", 2)[2] for f in queries],
        [f.value for f in queries],
        color=[
            "tab:gray" if f.met is None else "tab:green" if f.met else "tab:red" for f in queries
        ],
    )
    right.axvline(query_bench.TARGET_MS, color="black", linestyle="--", label="target 100 ms")
    right.set_xlabel("p95 ms")
    right.set_title(f"Logs view queries at {largest} events (gray: no target)")
    right.tick_params(axis="y", labelsize=8)
    right.legend(loc="lower right")
    fig.suptitle(f"authtrail bench, BENCH_SCALE={scale():g} — {machine()}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _m(label: str) -> float:
    return float(label.rstrip("M"))


def main() -> None:
    if sys.argv[1:] == ["--chart-only"]:  # redraw latest.png from latest.json
        saved = json.loads((RESULTS / "latest.json").read_text())["figures"]
        fields = [f for f in Figure.__dataclass_fields__ if f != "ratio"]
        redrawn = [Figure(**{k: v[k] for k in fields}) for v in saved.values()]
        chart(redrawn, str(RESULTS / "latest.png"))
        return
    started = time.monotonic()
    figures: list[Figure] = []
    figures += ingest_up.run(scaled(1_000_000), max(30.0, scaled(300)))
    figures += ingest_bench.run(scaled(1_000_000))
    figures += http_ingest_bench.run(scaled(200_000))
    figures += query_bench.figures([scaled(1_000_000), scaled(10_000_000)])
    figures += stream_bench.figures(scaled(1_000_000), scaled(2_000))
    minutes = (time.monotonic() - started) / 60
    RESULTS.mkdir(exist_ok=True)
    text = (
        f"authtrail bench, BENCH_SCALE={scale():g}, {minutes:.0f} min, on {machine()}\n\n"
        + table(figures)
    )
    (RESULTS / "latest.md").write_text(text + "\n")
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "scale": scale(),
                "minutes": round(minutes, 1),
                "figures": {f.name: f.as_json() for f in figures},
            },
            indent=2,
        )
        + "\n"
    )
    chart(figures, str(RESULTS / "latest.png"))
    print(text)
    print(f"\nwritten {RESULTS / 'latest.md'}, latest.json, latest.png")


if __name__ == "__main__":
    main()
