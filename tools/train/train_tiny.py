#!/usr/bin/env python3
"""Trains Ember's default model, ember-tiny, and its draft model, ember-tiny-draft, from corpus.txt.

Three stages, each of which leaves its results on disk before the next starts, so that a failure late
in the run still returns what came before it:
  1. a byte-level BPE tokenizer (HF `tokenizers`, 4096 entries, GPT-2 style byte mapping);
  2. the main model, a transformers LlamaForCausalLM (~7.3M parameters), for a fixed wall-clock budget;
  3. the draft model, a smaller LlamaForCausalLM with the same tokenizer, likewise.
Each model is exported with save_pretrained in bfloat16, reloaded from disk and sampled from, so the
samples in summary.json come from the exported files and not from the training process's memory.

Training is time-boxed rather than step-counted because it runs inside a device call with a hard
limit; the learning-rate schedule therefore follows elapsed time (warm-up over steps, then a cosine
decay over the wall-clock budget), and the weights kept are those of the best validation loss.

Usage (GPU host): train_tiny.py --corpus corpus.txt --out OUT [--main-seconds 240 --draft-seconds 80]
"""
import argparse
import copy
import csv
import json
import math
import random
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

RECORD_SEPARATOR_LINE = "\n\x1e\n"
VOCAB_SIZE = 4096
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2  # the trainer assigns special tokens their ids in this order
MODEL_MAX_LENGTH = 1024
SEED = 1611
VALIDATION_EVERY_NTH_DOCUMENT = 100
DEVICE = "cuda"  # --device cpu exists only to rehearse the script on a machine without a GPU

MAIN_SHAPE = dict(hidden_size=256, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                  intermediate_size=768)
DRAFT_SHAPE = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=384)

SAMPLE_PROMPTS = [
    "In the beginning",
    "And the LORD said unto Moses,",
    "The meaning of life is",
    "computer: a machine that",
    "A friend in need",
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------
# Tokenizer


def read_documents(corpus: Path) -> list[str]:
    text = corpus.read_text(encoding="utf-8")
    return [doc for doc in text.split(RECORD_SEPARATOR_LINE) if doc.strip()]


def train_tokenizer(documents: list[str], out_dir: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    # GPT-2's scheme: split on its regex, map every byte to a printable character, so that no text is
    # ever out of vocabulary and decoding restores the exact bytes.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    for token, expected in ((BOS, BOS_ID), (EOS, EOS_ID), (PAD, PAD_ID)):
        actual = tokenizer.token_to_id(token)
        if actual != expected:
            raise RuntimeError(f"special token {token} got id {actual}, expected {expected}")
    # Encoding with special tokens prepends <s>, as Llama tokenizers do; the model is trained on
    # "<s> document </s>" so a prompt starts the way every training document does.
    tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0",
            pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, BOS_ID)],
        ),
    ])
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    write_tokenizer_config(out_dir)
    return tokenizer


def write_tokenizer_config(out_dir: Path) -> None:
    def added(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}

    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(BOS_ID): added(BOS), str(EOS_ID): added(EOS), str(PAD_ID): added(PAD)},
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MODEL_MAX_LENGTH,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def copy_tokenizer(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (dst / name).write_bytes((src / name).read_bytes())


def check_tokenizer(tokenizer_dir: Path, texts: list[str]) -> dict:
    """Round trips and the bos rule, through both `tokenizers` and transformers' AutoTokenizer."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    failures = []
    for text in texts:
        ids = raw.encode(text, add_special_tokens=True).ids
        if ids[:1] != [BOS_ID] or ids.count(BOS_ID) != 1 + text.count(BOS):
            failures.append(f"bos rule broken for {text!r}: {ids[:5]}")
        if raw.decode(ids, skip_special_tokens=True) != text.replace(BOS, "").replace(EOS, "").replace(PAD, ""):
            failures.append(f"round trip broken for {text!r}")
        auto_ids = auto(text)["input_ids"]
        if auto_ids != ids:
            failures.append(f"AutoTokenizer differs for {text!r}: {auto_ids[:8]} vs {ids[:8]}")
    return {"texts": len(texts), "failures": failures, "auto_class": type(auto).__name__}


# ---------------------------------------------------------------------------------------------------
# Data


def encode_documents(tokenizer, documents: list[str]) -> torch.Tensor:
    encodings = tokenizer.encode_batch(documents, add_special_tokens=False)
    stream = []
    for encoding in encodings:
        stream.append(BOS_ID)
        stream.extend(encoding.ids)
        stream.append(EOS_ID)
    return torch.tensor(stream, dtype=torch.int64)


class Batches:
    """Random windows of a packed token stream; windows cross document boundaries, as in packing."""

    def __init__(self, stream: torch.Tensor, batch_size: int, context: int, device: str, seed: int):
        self.stream = stream.to(device)
        self.batch_size = batch_size
        self.offsets = torch.arange(context + 1, device=device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.limit = len(stream) - context - 1

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, self.limit, (self.batch_size, 1), device=self.stream.device,
                               generator=self.generator)
        window = self.stream[starts + self.offsets]
        return window[:, :-1], window[:, 1:]


# ---------------------------------------------------------------------------------------------------
# Models


def llama_config(shape: dict, **extra):
    from transformers import LlamaConfig

    common = dict(vocab_size=VOCAB_SIZE, max_position_embeddings=MODEL_MAX_LENGTH, rms_norm_eps=1e-5,
                  tie_word_embeddings=True, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
                  hidden_act="silu", attention_bias=False, initializer_range=0.02, **shape, **extra)
    try:  # transformers 5 keeps rope_theta inside rope_parameters
        return LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **common)
    except TypeError:
        return LlamaConfig(rope_theta=10000.0, **common)


def parameter_count(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def evaluate(model, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16):
        for inputs, targets in batches:
            logits = model(input_ids=inputs, use_cache=False).logits
            total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1)).item()
    model.train()
    return total / len(batches)


def train_model(name: str, shape: dict, train_stream: torch.Tensor, val_stream: torch.Tensor,
                seconds: float, peak_lr: float, warmup_steps: int, out_dir: Path, batch_size: int = 64,
                context: int = 256) -> dict:
    from transformers import LlamaForCausalLM

    torch.manual_seed(SEED)
    config = llama_config(shape)
    model = LlamaForCausalLM(config).to(DEVICE)
    model.train()
    params = parameter_count(model)
    log(f"{name}: {params} parameters, config {config.to_dict().get('rope_parameters')}")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=peak_lr, betas=(0.9, 0.95), eps=1e-8, fused=DEVICE == "cuda")
    train_batches = Batches(train_stream, batch_size, context, DEVICE, SEED)
    val_source = Batches(val_stream, batch_size, context, DEVICE, SEED + 1)
    val_batches = [val_source.next() for _ in range(16)]

    rows = []
    best = {"val_loss": math.inf, "step": 0, "state": None}
    step = 0
    smoothed = None
    start = time.monotonic()
    elapsed = 0.0
    while elapsed < seconds:
        progress = min(1.0, elapsed / seconds)
        lr = peak_lr * min(1.0, (step + 1) / warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = train_batches.next()
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            logits = model(input_ids=inputs, use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, VOCAB_SIZE), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 25 == 0 or step == 1:
            value = loss.item()  # also synchronises, so the wall clock below is honest
            smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
            elapsed = time.monotonic() - start
            row = {"step": step, "elapsed_s": round(elapsed, 2), "lr": lr, "train_loss": value,
                   "train_loss_smoothed": smoothed, "val_loss": ""}
            if step % 250 == 0:
                val_loss = evaluate(model, val_batches)
                row["val_loss"] = val_loss
                if val_loss < best["val_loss"]:
                    best = {"val_loss": val_loss, "step": step,
                            "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                log(f"{name}: step {step} {elapsed:.0f}s lr {lr:.2e} train {smoothed:.3f} val {val_loss:.3f}")
            rows.append(row)
    final_val = evaluate(model, val_batches)
    rows.append({"step": step, "elapsed_s": round(time.monotonic() - start, 2), "lr": lr,
                 "train_loss": loss.item(), "train_loss_smoothed": smoothed, "val_loss": final_val})
    if final_val <= best["val_loss"]:
        best = {"val_loss": final_val, "step": step, "state": None}
    else:
        model.load_state_dict(best["state"])
    log(f"{name}: {step} steps in {rows[-1]['elapsed_s']}s; final val {final_val:.4f}, "
        f"kept step {best['step']} (val {best['val_loss']:.4f})")

    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "loss.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return {
        "model": model,
        "summary": {
            "parameters": params,
            "steps": step,
            "seconds": rows[-1]["elapsed_s"],
            "batch_size": batch_size,
            "context": context,
            "tokens_seen": step * batch_size * context,
            "peak_lr": peak_lr,
            "warmup_steps": warmup_steps,
            "final_train_loss_smoothed": smoothed,
            "final_val_loss": final_val,
            "kept_step": best["step"],
            "kept_val_loss": best["val_loss"],
        },
    }


def save_pretrained(model, out_dir: Path) -> None:
    """Exports in bf16; transformers 5 has dropped the non-safetensors format, so the flag may be gone."""
    from transformers import GenerationConfig

    export = copy.deepcopy(model).to(torch.bfloat16).cpu()
    export.config.dtype = torch.bfloat16  # written to config.json as "dtype" (transformers 5)
    try:
        export.save_pretrained(str(out_dir), safe_serialization=True)
    except TypeError:
        export.save_pretrained(str(out_dir))
    GenerationConfig(bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
                     do_sample=False).save_pretrained(str(out_dir))
    if not (out_dir / "model.safetensors").exists():
        raise RuntimeError(f"{out_dir}: save_pretrained wrote no model.safetensors")


def sample(model_dir: Path) -> list[dict]:
    """Greedy and sampled continuations from the exported files, loaded afresh."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16).to(DEVICE).eval()
    results = []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        encoded = tokenizer(prompt, return_tensors="pt").to(DEVICE)
        n = encoded["input_ids"].shape[1]
        with torch.no_grad():
            greedy = model.generate(**encoded, do_sample=False, max_new_tokens=48, eos_token_id=EOS_ID,
                                    pad_token_id=PAD_ID)
            torch.manual_seed(SEED + i)
            sampled = model.generate(**encoded, do_sample=True, temperature=0.8, top_k=50, top_p=0.95,
                                     max_new_tokens=48, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
        results.append({
            "prompt": prompt,
            "greedy": tokenizer.decode(greedy[0, n:], skip_special_tokens=True),
            "sampled_t0.8_topk50_topp0.95": tokenizer.decode(sampled[0, n:], skip_special_tokens=True),
        })
        log(f"sample {prompt!r}: greedy {results[-1]['greedy']!r}")
    return results


def exported_validation_loss(model_dir: Path, val_stream: torch.Tensor) -> dict:
    """Validation loss of the exported bf16 weights: run natively in bf16 and upcast to fp32."""
    from transformers import AutoModelForCausalLM

    batches = Batches(val_stream, 64, 256, DEVICE, SEED + 1)
    val_batches = [batches.next() for _ in range(16)]
    losses = {}
    for label, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16).to(dtype).to(DEVICE).eval()
        total = 0.0
        with torch.no_grad():
            for inputs, targets in val_batches:
                logits = model(input_ids=inputs, use_cache=False).logits.float()
                total += F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), targets.reshape(-1)).item()
        losses[label] = total / len(val_batches)
    return losses


def plot(loss_csvs: dict[str, Path], png: Path, x: str = "step", xlabel: str = "step (64 x 256 tokens)",
         top: float = 6) -> None:
    """Training (smoothed) and validation loss of each model against the csv column x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, path in loss_csvs.items():
        with path.open() as f:
            rows = list(csv.DictReader(f))
        steps = [float(r[x]) for r in rows]
        ax.plot(steps, [float(r["train_loss_smoothed"]) for r in rows], label=f"{name} train (EMA)")
        val = [(float(r[x]), float(r["val_loss"])) for r in rows if r["val_loss"] != ""]
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", markersize=3, label=f"{name} validation")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_ylim(top=top)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("ember-tiny and ember-tiny-draft training")
    fig.tight_layout()
    fig.savefig(png)


# ---------------------------------------------------------------------------------------------------


def versions() -> dict:
    import tokenizers
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "python": sys.version.split()[0],
            "device": torch.cuda.get_device_name(0) if DEVICE == "cuda" else DEVICE}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/models/* and OUT/train/*")
    parser.add_argument("--texts", type=Path, help="tokenizer_texts.json, for the tokenizer's self-check")
    parser.add_argument("--main-seconds", type=float, default=240)
    parser.add_argument("--draft-seconds", type=float, default=80)
    parser.add_argument("--device", default="cuda", help="cpu only to rehearse the script")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device

    import tokenizers
    import transformers
    random.seed(SEED)
    torch.manual_seed(SEED)
    torch.backends.cuda.matmul.allow_tf32 = True
    models_dir, train_dir = args.out / "models", args.out / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    summary = {"versions": versions(), "failures": []}

    def write_summary() -> None:
        (train_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")

    try:
        documents = read_documents(args.corpus)
        t0 = time.monotonic()
        tokenizer = train_tokenizer(documents, models_dir / "ember-tiny")
        copy_tokenizer(models_dir / "ember-tiny", models_dir / "ember-tiny-draft")
        validation = [d for i, d in enumerate(documents) if i % VALIDATION_EVERY_NTH_DOCUMENT == 0]
        training = [d for i, d in enumerate(documents) if i % VALIDATION_EVERY_NTH_DOCUMENT != 0]
        train_stream = encode_documents(tokenizer, training)
        val_stream = encode_documents(tokenizer, validation)
        summary["data"] = {
            "documents": len(documents), "training_documents": len(training),
            "validation_documents": len(validation), "corpus_bytes": args.corpus.stat().st_size,
            "training_tokens": len(train_stream), "validation_tokens": len(val_stream),
            "bytes_per_token": round(sum(len(d.encode()) for d in training) / len(train_stream), 3),
            "tokenizer_seconds": round(time.monotonic() - t0, 1),
        }
        log(f"data: {summary['data']}")
        if args.texts:
            texts = json.loads(args.texts.read_text(encoding="utf-8"))
            summary["tokenizer_check"] = check_tokenizer(models_dir / "ember-tiny", texts)
            log(f"tokenizer check: {summary['tokenizer_check']}")
        write_summary()
    except Exception:
        summary["failures"].append("tokenizer/data: " + traceback.format_exc())
        write_summary()
        traceback.print_exc()
        return 1

    csvs = {}
    for name, shape, seconds, lr, warmup in (("ember-tiny", MAIN_SHAPE, args.main_seconds, 2e-3, 200),
                                             ("ember-tiny-draft", DRAFT_SHAPE, args.draft_seconds, 3e-3, 100)):
        try:
            result = train_model(name, shape, train_stream, val_stream, seconds, lr, warmup, train_dir / name)
            csvs[name] = train_dir / name / "loss.csv"
            save_pretrained(result["model"], models_dir / name)
            del result["model"]
            summary[name] = result["summary"]
            write_summary()
            summary[name]["exported_val_loss"] = exported_validation_loss(models_dir / name, val_stream)
            summary[name]["samples"] = sample(models_dir / name)
            summary[name]["files"] = {p.name: p.stat().st_size for p in sorted((models_dir / name).iterdir())}
            log(f"{name}: {summary[name]}")
        except Exception:
            summary["failures"].append(f"{name}: " + traceback.format_exc())
            traceback.print_exc()
        write_summary()
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    try:
        plot(csvs, train_dir / "loss_curve.png")
    except Exception:
        summary["failures"].append("plot: " + traceback.format_exc())
        traceback.print_exc()
    write_summary()
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
