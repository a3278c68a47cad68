"""Summary, ratio table and chart from the runs of one comparison."""

import math
import statistics

from scenarios import HIGHER_IS_BETTER, UNITS


def _fmt(v):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100000:
        return f"{v / 1000:.0f}k"
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    if a >= 10:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def progress_line(n, total, rec):
    head = f"[{n:3}/{total}] rep {rec['rep']} {rec['scenario']:14} {rec['target']:9}"
    if rec.get("skipped"):
        return f"{head} skipped: {rec['skipped']}"
    if not rec.get("ok"):
        return f"{head} FAILED: {rec.get('error') or rec.get('bench_stderr_tail', '')[-300:]}"
    figures = "  ".join(f"{k}={_fmt(v)}" for k, v in rec.get("metrics", {}).items())
    mach = rec.get("machine", {})
    noisy = "  NOISY" if rec.get("noisy") else ""
    return (f"{head} {rec.get('elapsed_s', 0):5.1f}s  {figures}  "
            f"(other on server core {mach.get('other_on_server_core', 0):.0%}){noisy}")


def _values(runs, scenario, target, metric):
    """{rep: (value, noisy)} of successful runs."""
    out = {}
    for r in runs:
        if r.get("scenario") != scenario or r.get("target") != target or not r.get("ok"):
            continue
        v = r.get("metrics", {}).get(metric)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[r["rep"]] = (float(v), bool(r.get("noisy")))
    return out


def summarise(results, plan):
    runs = results["runs"]
    targets = results["targets"]
    summary = {}
    for sc in plan:
        per_metric = {}
        for metric in sc.primary:
            entry = {"unit": UNITS.get(metric, ""),
                     "higher_is_better": HIGHER_IS_BETTER.get(metric), "targets": {}}
            ours = _values(runs, sc.name, "wsfleet", metric)
            for t in targets:
                vals = _values(runs, sc.name, t, metric)
                e = {"values": [vals[k][0] for k in sorted(vals)],
                     "median": statistics.median(v for v, _ in vals.values()) if vals else None}
                if t != "wsfleet":
                    # Ratios pair runs of the same repetition; clean pairs are preferred.
                    pairs = [(ours[k], vals[k]) for k in sorted(vals) if k in ours]
                    clean = [(a, b) for a, b in pairs if not a[1] and not b[1]]
                    used = clean or pairs
                    ratios = [a[0] / b[0] for a, b in used if b[0] != 0]
                    e["ratios"] = [round(x, 4) for x in ratios]
                    e["ratio"] = round(statistics.median(ratios), 4) if ratios else None
                    e["ratio_from_noisy_runs"] = bool(used) and not clean
                entry["targets"][t] = e
            per_metric[metric] = entry
        summary[sc.name] = per_metric
    return summary


def table(results, plan):
    peers = [t for t in results["targets"] if t != "wsfleet"]
    summary = results["summary"]
    head = f"{'scenario':14} {'metric':27} {'wsfleet':>9}"
    for p in peers:
        head += f" | {p:>9} {'ratio':>7}"
    lines = [head, "-" * len(head)]
    for sc in plan:
        for metric, entry in summary.get(sc.name, {}).items():
            t = entry["targets"]
            unit = f" {entry['unit']}" if entry["unit"] else ""
            line = f"{sc.name:14} {(metric + unit)[:27]:27} " \
                   f"{_fmt(t.get('wsfleet', {}).get('median')):>9}"
            for p in peers:
                e = t.get(p, {})
                ratio = e.get("ratio")
                rs = "-" if ratio is None else f"{ratio:.2f}" + ("*" if e.get(
                    "ratio_from_noisy_runs") else "")
                line += f" | {_fmt(e.get('median')):>9} {rs:>7}"
            lines.append(line)
    lines.append("")
    lines.append("ratio = wsfleet / peer, median over repetitions of same-repetition pairs; "
                 "for µs, KB and ms lower is better, for rates and fractions higher is "
                 "better; * = only noisy runs available")
    noisy = [r for r in results["runs"] if r.get("noisy")]
    if noisy:
        lines.append(f"{len(noisy)} run(s) flagged noisy (other processes on the server core)")
    return "\n".join(lines)


def chart(results, plan, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return None
    targets = results["targets"]
    panels = [(sc, m) for sc in plan for m in results["summary"].get(sc.name, {})]
    if not panels:
        return None
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colors = {"wsfleet": "#d62728", "nats": "#1f77b4", "mqtt": "#9467bd", "ws": "#2ca02c",
              "socketio": "#ff7f0e", "floor": "#7f7f7f"}
    for ax, (sc, metric) in zip(axes.flat, panels):
        entry = results["summary"][sc.name][metric]
        meds, lo, hi = [], [], []
        for t in targets:
            vals = entry["targets"].get(t, {}).get("values") or []
            med = entry["targets"].get(t, {}).get("median")
            meds.append(med or 0.0)
            lo.append((med - min(vals)) if vals else 0.0)
            hi.append((max(vals) - med) if vals else 0.0)
        ax.bar(range(len(targets)), meds, yerr=[lo, hi], capsize=3,
               color=[colors.get(t, "gray") for t in targets])
        ax.set_xticks(range(len(targets)))
        ax.set_xticklabels(targets, fontsize=8)
        better = {True: "higher is better", False: "lower is better"}.get(
            entry["higher_is_better"], "")
        unit = f" [{entry['unit']}]" if entry["unit"] else ""
        ax.set_title(f"{sc.name}: {metric}{unit}\n{better}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _fmt(v)))
        for i, m in enumerate(meds):
            if m:
                ax.text(i, m, _fmt(m), ha="center", va="bottom", fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    env = results.get("environment", {})
    fig.suptitle(f"wsfleet vs peers, server on 1 core, load on another "
                 f"({results['reps']} rep(s), {env.get('cpu_model') or 'unknown CPU'})",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
