"""The benchmark's report: markdown tables and the HTML report (an ``mne.Report``)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..utils import atomic_path
from .conditions import BENCHMARK_VERSION, CONDITIONS
from .scoring import KEY_METRICS, METRICS

#: Methods drawn on the cortex figures (besides the truth and the learned models).
CORTEX_METHODS = ("sLORETA", "MxNE", "Champagne")


def benchmark_markdown(summary, best, wins, conditions, methods, competitors, skipped, cond_info,
                       tuning, lf_notes, noise_note, patch_rule, split, frac_train,
                       paired=None) -> str:
    """The markdown report: settings, one table per key metric, fraction best, win table."""
    table = {(r["condition"], r["method"], r["metric"]): r for r in summary}
    lines = _md_settings(skipped, tuning, lf_notes, noise_note, patch_rule, split, frac_train)
    lines += _md_conditions(conditions, cond_info)
    for metric in METRICS:
        lines += _md_metric_table(metric, table, conditions, methods, competitors)
    lines += _md_fraction_best(best, conditions, competitors)
    lines += _md_wins(wins, conditions, competitors)
    for ref, table_ in (paired or {}).items():
        lines += _md_paired(ref, table_, conditions, methods)
    return "\n".join(lines)


def _md_settings(skipped, tuning, lf_notes, noise_note, patch_rule, split, frac_train) -> list:
    lines = [f"# LightBunny generalisation benchmark v{BENCHMARK_VERSION}", "",
             f"- split: **{split}**; test patches never equal {patch_rule}; "
             f"{100 * frac_train:.0f} % of the possible test centres are training centres",
             "- leadfields: " + "; ".join(f"{k}: {v}" for k, v in lf_notes.items()),
             f"- real noise: {noise_note}",
             "- hyper-parameters (never from the test truth): " + "; ".join(
                 f"{k}: {v.get('alpha', '')} ({v['how']})" for k, v in tuning.items()),
             "- cells: median [bootstrap 95 % CI] over the condition's samples; best competitor "
             "in bold; `random` is the floor, `truth` and `oracle_patches` the ceilings",
             "- localisation error / precision / recall use DeepSIF's Otsu rule (regions above "
             "the Otsu threshold of the normalised |output| for > 7 samples); EMD, peak error, "
             "AUC and spatial PCC are threshold-free; EMD ground cost: Euclidean distance "
             "between region centres (mm)", ""]
    if skipped:
        lines += ["Skipped conditions:", ""] + [f"- `{c}`: {why}" for c, why in skipped.items()]
        lines.append("")
    return lines


def _md_conditions(conditions, cond_info) -> list:
    lines = ["| condition | factor: level | samples | patch regions (median, range) | "
             "realised SNR (dB) |", "| --- | --- | --- | --- | --- |"]
    for c in conditions:
        inf = cond_info[c]
        snr = inf.get("realised_snr_db_range")
        mem = inf.get("fraction_patches_equal_to_training")
        extra = (f"; {100 * mem:.0f} % of its patches are in the training patch set (split rule "
                 "above)" if mem is not None else "")
        lines.append(f"| {c} | {CONDITIONS[c]['factor']}: {CONDITIONS[c]['level']}{extra} | "
                     f"{inf['n_samples']} | {inf['patch_regions_median']:g} "
                     f"({'-'.join(map(str, inf['patch_regions_range']))}) | "
                     f"{snr[0]:.2f} to {snr[1]:.2f} |")
    lines.append("")
    return lines


def _md_metric_table(metric, table, conditions, methods, competitors) -> list:
    """One metric: median [CI] per condition x method, the best competitor in bold."""
    arrow = "↓" if METRICS[metric] == "lower" else "↑"
    sign = 1.0 if METRICS[metric] == "lower" else -1.0
    lines = [f"## {metric} {arrow}", "", "| condition | " + " | ".join(methods) + " |",
             "| --- |" + " --- |" * len(methods)]
    for c in conditions:
        meds = {m: table[(c, m, metric)]["median"] for m in methods if (c, m, metric) in table}
        comp = [sign * meds[m] for m in competitors if m in meds and np.isfinite(meds[m])]
        top = min(comp) if comp else None
        cells = []
        for m in methods:
            r = table.get((c, m, metric))
            if r is None or not np.isfinite(r["median"]):
                cells.append("n/a")
                continue
            s = f"{r['median']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
            if m in competitors and top is not None and np.isclose(sign * r["median"], top):
                s = f"**{s}**"
            cells.append(s)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _md_fraction_best(best, conditions, competitors) -> list:
    lines = ["## Fraction of samples where each method is best", "",
             "| condition | metric | " + " | ".join(competitors) + " |",
             "| --- | --- |" + " --- |" * len(competitors)]
    fb = {(r["condition"], r["metric"], r["method"]): r["fraction_best"] for r in best}
    for c in conditions:
        for metric in KEY_METRICS:
            lines.append(f"| {c} | {metric} | " + " | ".join(
                f"{fb[(c, metric, m)]:.2f}" for m in competitors) + " |")
    return lines


def _md_wins(wins, conditions, competitors) -> list:
    lines = ["", f"## Wins: key metrics (of {len(KEY_METRICS)}: {', '.join(KEY_METRICS)}) on "
                 "which the method has the best median", "",
             "| method | " + " | ".join(conditions) + " | total |",
             "| --- |" + " --- |" * (len(conditions) + 1)]
    for m in competitors:
        vals = [wins[(m, c)] for c in conditions]
        lines.append(f"| {m} | " + " | ".join(map(str, vals)) + f" | {sum(vals)} |")
    lines.append("")
    return lines


def _md_paired(ref, table_, conditions, methods) -> list:
    lines = [f"## Win/loss against {ref}, per sample, on EMD (wins-losses of the method)", "",
             "| method | " + " | ".join(conditions) + " | total |",
             "| --- |" + " --- |" * (len(conditions) + 1)]
    for m in sorted({k[0] for k in table_}, key=list(methods).index):
        cells = [table_[(m, c)] for c in conditions]
        tw, tl = sum(w for w, _ in cells), sum(l_ for _, l_ in cells)
        lines.append(f"| {m} | " + " | ".join(f"{w}-{l_}" for w, l_ in cells)
                     + f" | {tw}-{tl} |")
    lines.append("")
    return lines


def _md_to_html(md: str) -> str:
    out, in_table, header = [], False, False
    for line in md.splitlines():
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level + 1}>{html.escape(line.lstrip('#').strip())}</h{level + 1}>")
        elif line.startswith("| ---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not in_table:
                out.append("<table border='1' style='border-collapse:collapse;font-size:12px'>")
                in_table, header = True, True
            tag = "th" if header else "td"
            header = False
            out.append("<tr>" + "".join(
                f"<{tag}>" + (f"<b>{html.escape(c[2:-2])}</b>" if c.startswith("**")
                              else html.escape(c)) + f"</{tag}>" for c in cells) + "</tr>")
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.startswith("- "):
                out.append(f"<p>• {html.escape(line[2:])}</p>")
            elif line.strip():
                out.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def _write_report(out_dir, md, rows, conditions, methods, examples, atlas, config) -> Path:
    import json

    import mne

    from ..viz import _mpl, plot_cortex, save_figure

    plt = _mpl()
    report = mne.Report(title=f"LightBunny generalisation benchmark v{BENCHMARK_VERSION}",
                        verbose=False)
    report.add_html(_md_to_html(md), title="Tables", tags=("tables",))
    colours = plt.get_cmap("tab20")
    for metric in KEY_METRICS:
        fig, ax = plt.subplots(figsize=(min(24.0, max(8.0, 1.2 * len(conditions))), 4.5))
        width = 0.8 / len(methods)
        for j, m in enumerate(methods):
            data = [[r[metric] for r in rows if r["condition"] == c and r["method"] == m
                     and np.isfinite(r[metric])] or [np.nan] for c in conditions]
            pos = np.arange(len(conditions)) + (j - (len(methods) - 1) / 2) * width
            bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                            showfliers=False)
            for box in bp["boxes"]:
                box.set_facecolor(colours(j % 20))
        ax.set_xticks(range(len(conditions)), conditions, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{metric} ({METRICS[metric]} is better)")
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours(j % 20)) for j in range(len(methods))]
        ax.legend(handles, methods, fontsize=6, ncol=4)
        fig.tight_layout()
        path = save_figure(fig, out_dir / "figures" / f"box_{metric}.png")
        report.add_image(path, title=f"box plot: {metric}", tags=("box-plots",))
    for (cname, i), ex in sorted(examples.items()):
        panels = ["truth"] + [m for m in ex if m not in ("truth", "centres")]
        fig = plt.figure(figsize=(13, 2.6 * len(panels)))
        sub = np.atleast_1d(fig.subfigures(len(panels), 1))
        for sf, name in zip(sub, panels):
            power = (ex[name] ** 2).mean(0)
            power = power / (power.max() or 1.0)
            plot_cortex(atlas, power, cmap="hot_r", symmetric=False,
                        title=f"{cname} sample {i}: {name}", fig=sf)
        path = save_figure(fig, out_dir / "figures" / f"cortex_{cname}_{i}.png")
        report.add_image(path, title=f"cortex: {cname}, sample {i}", tags=("cortex",))
    report.add_html(f"<pre>{html.escape(json.dumps(config, indent=2, default=str))}</pre>",
                    title="Parameters", tags=("parameters",))
    path = out_dir / "report.html"
    with atomic_path(path, suffix=".html") as tmp:
        report.save(str(tmp), open_browser=False, overwrite=True, verbose=False)
    return path
