#!/usr/bin/env python3
"""Prints the figures of a train_default.py run (its summary.json) as Markdown tables, for
docs/default-model.md, tools/train/README.md and the model cards:
  describe_default.py tools/train/results/summary.json
"""
import json
import sys


def cell(text: str) -> str:
    """A continuation as a table cell: code span, newlines and tabs visible, pipes escaped."""
    return "`" + text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("|", "\\|").replace("`", "'") + "`"


def main() -> None:
    summary = json.loads(open(sys.argv[1], encoding="utf-8").read())
    print("## Models\n")
    names = ("ember-tiny", "ember-tiny-draft")
    print("| | " + " | ".join(names) + " |\n| --- | --- | --- |")
    rows = [("parameters", lambda m: f"{m['parameters']:,}"),
            ("shape", lambda m: ", ".join(f"{k} {v}" for k, v in m["shape"].items())),
            ("steps (seconds)", lambda m: f"{m['steps']:,} ({m['seconds']:.0f} s)"),
            ("tokens seen", lambda m: f"{m['tokens_seen']:,}"),
            ("kept step: validation loss", lambda m: f"{m['kept_step']:,}: {m['kept_val_loss']:.4f}"),
            ("last step: train (EMA) / validation", lambda m: f"{m['final_train_loss_smoothed']:.3f} / {m['final_val_loss']:.3f}"),
            ("model.safetensors bytes", lambda m: f"{m['files'].get('model.safetensors', 0):,}")]
    for label, show in rows:
        values = []
        for name in names:
            try:
                values.append(show(summary[name]))
            except (KeyError, TypeError):
                values.append("-")
        print(f"| {label} | " + " | ".join(values) + " |")

    data = summary.get("data", {})
    if data:
        print(f"\nData: {data['documents']:,} documents ({data['corpus_bytes']:,} bytes); {data['held_out_documents']:,} "
              f"held out ({data['held_out_bytes']:,} bytes); {data['training_tokens']:,} training tokens, "
              f"{data['bytes_per_token']} bytes a token.")

    held = summary.get("held_out", {})
    if held:
        print("\n## Held-out text\n")
        labels = list(held)
        print("| source | bytes | " + " | ".join(f"{label}: bits/byte (per-token perplexity)" for label in labels) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in labels) + " |")
        first = held[labels[0]]
        for source in ["total"] + sorted(first["per_source"]):
            score = first["total"] if source == "total" else first["per_source"][source]
            values = []
            for label in labels:
                s = held[label]["total"] if source == "total" else held[label]["per_source"][source]
                values.append(f"{s['bits_per_byte']:.3f} ({s['perplexity_per_token']:.1f})")
            name = "**all**" if source == "total" else source
            print(f"| {name} | {score['bytes']:,} | " + " | ".join(values) + " |")

    accept = summary.get("acceptance", {})
    if accept:
        print(f"\n## Draft acceptance ({accept['prompts']} prompts, {accept['new_tokens']} greedy tokens each; "
              f"next-token agreement {accept['next_token_agreement']:.3f})\n")
        print("| gamma | acceptance rate | tokens per main-model pass |\n| --- | --- | --- |")
        for gamma, a in accept["by_gamma"].items():
            print(f"| {gamma} | {a['acceptance_rate']:.3f} | {a['tokens_per_main_pass']:.2f} |")

    samples = summary.get("samples", {})
    for name, rows in samples.items():
        print(f"\n## {name} samples\n\n| prompt | greedy | sampled (t 0.8, top-k 50, top-p 0.95) |\n| --- | --- | --- |")
        for row in rows:
            print(f"| {row['prompt']} | {cell(row['greedy'])} | {cell(row['sampled_t0.8_topk50_topp0.95'])} |")

    if summary.get("failures"):
        print("\n## Failures\n")
        for failure in summary["failures"]:
            print("    " + failure.replace("\n", "\n    "))


if __name__ == "__main__":
    main()
