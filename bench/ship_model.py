"""Ship a trained checkpoint as a named model of the package (issue 14).

Writes ``lightbunny/data/models/NAME.pt`` (the checkpoint without optimiser and RNG state, weights
in float16: a 1.5 M-parameter LightBunny is 3 MB) and ``NAME.json``, its model card: what it was
trained on, the budget, benchmark scores and limits, plus the SHA-256 of the weights file, which
the loader checks. ``lightbunny apply --checkpoint NAME`` then finds it.

Run::

    python bench/ship_model.py /work/runs/gen/train/best.pt --name NAME --card card.json

``--card`` is a JSON file with the card's text fields (description, training, budget, benchmark,
limits); atlas, montage and channel count are read from the checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

MODELS_DIR = Path(__file__).resolve().parents[1] / "lightbunny" / "data" / "models"
DROP = ("optimizer_state", "rng")


def slim(ckpt: dict) -> dict:
    """The checkpoint without training state, floating-point weights in float16."""
    out = {k: v for k, v in ckpt.items() if k not in DROP}
    out["model_state"] = {k: (v.half() if v.is_floating_point() else v)
                          for k, v in ckpt["model_state"].items()}
    out["history"] = [{k: row[k] for k in ("epoch", "train_loss", "val_loss") if k in row}
                      for row in ckpt.get("history", [])]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--name", required=True)
    p.add_argument("--card", required=True, help="JSON file of the card's text fields")
    p.add_argument("--out", default=str(MODELS_DIR))
    args = p.parse_args()
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{args.name}.pt"
    torch.save(slim(ckpt), weights)
    meta = ckpt.get("meta", {})
    card = {"name": args.name, **json.loads(Path(args.card).read_text()),
            "atlas": meta.get("atlas"), "montage": meta.get("montage"),
            "n_chans": len(meta.get("ch_names", [])), "model_name": ckpt["model_name"],
            "model_config": ckpt["model_config"],
            "checkpoint_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    (out / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{weights} ({weights.stat().st_size / 1e6:.1f} MB) and its card")


if __name__ == "__main__":
    main()
