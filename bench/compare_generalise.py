"""Compact table of a benchmark run: the network against the best classical or sparse method.

Reads ``summary.md`` of ``lightbunny benchmark`` (one network) and, optionally, an older
report whose first network column is another model (``--old``, e.g. the previous recipe's model
in ``bench/fsaverage994_benchmark_small.md``). Per condition and key metric: the new network's
median, the old one's, and the best of the five classical and three sparse methods (named),
with the random-map floor (EMD and AUC) in the last column;
bold where the new network is at least as good as that best. Then, per metric, in how many
conditions it is.

Run::

    python bench/compare_generalise.py /work/runs/bench/small/summary.md \\
        --old bench/fsaverage994_benchmark_small.md
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

KEY = (("emd", "EMD mm", "lower"), ("peak_error", "peak error mm", "lower"),
       ("localisation_error", "LE mm", "lower"), ("roc_auc", "AUC", "higher"),
       ("temporal_pcc_centre", "temporal PCC", "higher"))
OTHERS = ("MNE", "dSPM", "sLORETA", "eLORETA", "LCMV", "MxNE", "gamma-MAP", "Champagne")


def read_tables(path) -> dict:
    """{metric: {condition: {method: median}}} from a benchmark summary.md."""
    out, metric, header = {}, None, None
    for line in Path(path).read_text().splitlines():
        m = re.match(r"## (\w+) [↓↑]", line)
        if m:
            metric, header = m.group(1), None
            out[metric] = {}
            continue
        if metric is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "condition":
            header = cells
        elif header and not set(cells[0]) <= {"-", " "}:
            vals = {}
            for name, cell in zip(header[1:], cells[1:]):
                num = re.match(r"\**(-?[\d.]+(?:e-?\d+)?)", cell)
                if num:
                    vals[name] = float(num.group(1))
            out[metric][cells[0]] = vals
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("summary")
    p.add_argument("--old", help="an older report; its first network column is 'old'")
    args = p.parse_args()
    new = read_tables(args.summary)
    old = read_tables(args.old) if args.old else {}
    conditions = list(new["emd"])
    nets = [k for k in next(iter(new["emd"].values())) if k.startswith("lightbunny")]
    net = nets[0]
    head = "| condition | " + " | ".join(
        f"{label}: new / {'old / ' if old else ''}best other" for _, label, _ in KEY) \
        + " | random map: EMD / AUC |"
    print(head)
    print("| --- |" + " --- |" * (len(KEY) + 1))
    wins = dict.fromkeys([m for m, _, _ in KEY], 0)
    for c in conditions:
        cells = []
        for metric, _, better in KEY:
            row = new[metric][c]
            others = {k: v for k, v in row.items() if k in OTHERS}
            pick = min if better == "lower" else max
            best = pick(others, key=others.get)
            v = row[net]
            ok = v <= others[best] if better == "lower" else v >= others[best]
            wins[metric] += ok
            o = old.get(metric, {}).get(c, {})
            o_net = next((val for k, val in o.items() if k.startswith("lightbunny")), None)
            old_cell = (f"{o_net:.3g} / " if o_net is not None else "– / ") if old else ""
            cells.append(f"{'**' if ok else ''}{v:.3g}{'**' if ok else ''} / {old_cell}"
                         f"{others[best]:.3g} ({best})")
        floor = f"{new['emd'][c].get('random', float('nan')):.3g} / " \
                f"{new['roc_auc'][c].get('random', float('nan')):.3g}"
        print(f"| {c} | " + " | ".join(cells) + f" | {floor} |")
    print()
    for metric, label, _ in KEY:
        print(f"- {label}: new network at least as good as the best other method in "
              f"{wins[metric]} of {len(conditions)} conditions")


if __name__ == "__main__":
    main()
