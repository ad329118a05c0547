"""The top-level run report renders the evaluation's Markdown tables and the run's JSON as HTML."""

import re

from lightbunny.evaluate import markdown_tables_to_html, summary_markdown
from lightbunny.pipeline import _write_report, load_config


def _summary():
    return [{"method": m, "snr_db": 10.0, "metric": "localisation_error", "mean": v, "sd": 1.0,
             "median": v, "n": 3, "n_undefined": 0}
            for m, v in (("sloreta", 18.0), ("lightbunny:train", 4.0))]


def test_markdown_tables_become_html_tables():
    md = summary_markdown(_summary(), ["sloreta", "lightbunny:train"], [10.0])
    out = markdown_tables_to_html(md)
    assert out.count("<table>") == 1 and "<h3>SNR 10 dB</h3>" in out
    assert "<th>sloreta</th>" in out and "| ---" not in out
    # the best mean (lower localisation error) is bold, the other is not
    assert re.search(r"<td><b>4 ± 1 \(med 4\)</b></td>", out)
    assert "<td>18 ± 1 (med 18)</td>" in out


def test_run_report_has_no_raw_markdown_or_json(tmp_path):
    (tmp_path / "evaluation").mkdir()
    summary = _summary()
    (tmp_path / "evaluation" / "summary.md").write_text(
        summary_markdown(summary, ["sloreta", "lightbunny:train"], [10.0]))
    train_result = {"best_epoch": 5, "best_val_loss": 0.43, "epochs_run": 6,
                    "stopped_early": False, "val_loss_zero": 2.0}
    path = _write_report(tmp_path, load_config({}), {"apply": {}}, summary,
                         {"leadfield": 1.23, "train": 100.0, "total": 150.0}, train_result,
                         {"simulate": 0, "train": 0}, ["train"])
    page = path.read_text()
    body = page.split("<body>", 1)[1]
    assert "<pre>" not in body  # no section is left as preformatted raw text
    assert not re.search(r"^\|", body, re.M) and "| ---" not in body  # no raw Markdown table
    assert '"best_epoch"' not in body  # the training result is a table, not a JSON dump
    assert not re.search(r"\{\s*\n\s*\"", body)  # no indented JSON object anywhere
    assert "<td>best_epoch</td><td>5</td>" in body
    assert "<td>train</td><td>100.0</td>" in body
    assert "<h3>[train]</h3>" in body and "<td>epochs</td><td>20</td>" in body
    assert body.count("<table>") >= 4
