"""Ship a trained checkpoint as a named model of the package (issue 14).

A thin wrapper of :func:`lightbunny.inference.export_model`: writes
``lightbunny/data/models/NAME.pt`` (no optimiser or RNG state, weights in float16: a 1.5 M-parameter
LightBunny is 3 MB) and its model card ``NAME.json`` from a JSON file of the card's text fields
(description, montage, training, budget, benchmark, limits). ``lightbunny models NAME`` prints
the card; ``lightbunny apply --checkpoint NAME`` uses the model.

Run::

    python bench/ship_model.py /work/runs/gen/train/best.pt --name NAME --card card.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lightbunny.inference import export_model

MODELS_DIR = Path(__file__).resolve().parents[1] / "lightbunny" / "data" / "models"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--name", required=True)
    p.add_argument("--card", required=True, help="JSON file of the card's text fields")
    p.add_argument("--out", default=str(MODELS_DIR))
    args = p.parse_args()
    fields = json.loads(Path(args.card).read_text())
    card = export_model(args.checkpoint, args.name, out_dir=args.out, **fields)
    size = (Path(args.out) / card["checkpoint"]).stat().st_size / 1e6
    print(f"{Path(args.out) / card['checkpoint']} ({size:.1f} MB) and {args.name}.json")


if __name__ == "__main__":
    main()
