"""PNG charts for docs/ (matplotlib, which is installed in .venv-bench only)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.stats import spread  # noqa: E402

JOBPOOL, RAW, PEER = "#d62728", "#7f7f7f", "#1f77b4"


def _colour(name: str) -> str:
    return JOBPOOL if name.startswith("jobpool") else RAW if name == "raw" else PEER


def _bars(ax, by_system: dict[str, list], title: str, unit: str, log: bool = False) -> None:
    names = [n for n in report.order(by_system) if spread(by_system[n])]
    stats = [spread(by_system[n]) for n in names]
    meds = [s[0] for s in stats]
    errs = [[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]]
    ax.bar(names, meds, yerr=errs, capsize=3, color=[_colour(n) for n in names])
    for i, m in enumerate(meds):
        ax.annotate(
            f"{m:,.0f}" if m >= 100 else f"{m:.1f}",
            (i, m),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
    ax.tick_params(axis="x", rotation=35, labelsize=8)


def draw(main: dict, growth: dict | None, docs: Path) -> list[str]:
    """Draw the charts; returns their file names."""
    records = main["records"]
    a, b, c = (report.by_key(records, w) for w in "ABC")
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = [  # (workload records, figure, title, unit, log scale)
        (a, "processing_per_s", "A. processing, 2 worker processes", "jobs/s", False),
        (a, "push_per_s", "A. push one by one, 1 producer", "jobs/s", False),
        (b, "p99_ms", "B. pickup latency p99 (lower is better)", "ms", True),
        (c, "p99_ms", "C. delayed-job lateness p99 (lower is better)", "ms", True),
    ]
    for ax, (runs, key, title, unit, log) in zip(axes.flat, panels, strict=True):
        _bars(ax, {s: report.values(r, key) for s, r in runs.items()}, title, unit, log=log)
    meta = main["meta"]
    fig.suptitle(
        f"jobpool and its peers on one Redis: median of {meta['reps']} runs, bars "
        f"min–max ({meta['cores']} cores, {meta['date']})",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(docs / "benchmarks.png", dpi=110)
    plt.close(fig)
    names = ["benchmarks.png"]
    if growth:
        names.append(_growth(growth["records"], docs))
    return names


def _growth(records: list[dict], docs: Path) -> str:
    from benchmarks.growth import LEVELS, POOLS, _select

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for system, style in (("jobpool", "-o"), ("raw", "--s")):
        for op in ("push_us", "claim_us"):
            meds = [
                spread(report.values(_select(records, system, "backlog", "level", lv), op))
                for lv in LEVELS
            ]
            if all(meds):
                axes[0].plot(
                    LEVELS,
                    [m[0] for m in meds],
                    style,
                    label=f"{system} {'push' if op == 'push_us' else 'claim+run'}",
                    color=_colour(system),
                    alpha=1 if op == "claim_us" else 0.5,
                )
        rates = [
            spread(
                report.values(_select(records, system, "workers", "workers", w), "processing_per_s")
            )
            for w in POOLS
        ]
        if all(rates):
            axes[1].plot(POOLS, [r[0] for r in rates], style, label=system, color=_colour(system))
    axes[0].set_xscale("log")
    axes[0].set_title("F. cost per job as the backlog grows", fontsize=10)
    axes[0].set_xlabel("jobs waiting")
    axes[0].set_ylabel("µs")
    axes[0].set_ylim(bottom=0)
    axes[1].set_title("F. processing rate by worker processes (2 cores)", fontsize=10)
    axes[1].set_xlabel("worker processes")
    axes[1].set_ylabel("jobs/s")
    axes[1].set_ylim(bottom=0)
    axes[1].set_xticks(POOLS)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(docs / "benchmarks-growth.png", dpi=110)
    plt.close(fig)
    return "benchmarks-growth.png"
