#!/usr/bin/env python3
"""Trains Ember's default model (models/ember-tiny) and its draft (models/ember-tiny-draft) together, then
measures them against the previous default model on the same held-out text.

Stages, each of which writes its results before the next starts (summary.json is rewritten after each),
so that a failure late in the run keeps what came before it:
  1. data: every 100th document of corpus.txt is held out; a byte-level BPE tokenizer (HF `tokenizers`,
     6144 entries) is trained on a third of the other documents; all of them are encoded and packed as
     "<s> document </s>";
  2. both models are trained in one loop on the same batches (the draft right after the main model, on
     one GPU), for a wall-clock budget, with validation at fixed intervals and the best weights kept;
  3. both are exported with save_pretrained (bfloat16, tied embeddings) beside the tokenizer files and a
     greedy generation_config.json;
  4. held-out evaluation of the exported files, computed in fp32: bits per byte and per-token perplexity
     of the new model, its draft and the previous model (--old-model, with its own tokenizer), per source;
     the draft's greedy acceptance rate against the new model; greedy and sampled continuations;
  5. the loss curve.

The learning-rate schedule follows elapsed time (linear warm-up over steps, then a cosine to 10% of the
peak over the budget), because the run is time-boxed. train_tiny.py's tokenizer, data and export helpers
are reused with this model's vocabulary size and context.

Usage (CUDA host): train_default.py --corpus corpus.txt --out OUT --old-model models/ember-tiny
        [--texts tools/fixtures/tokenizer_texts.json] [--train-seconds 330] [--finish-by EPOCH_SECONDS]
"""
import argparse
import csv
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tiny as base  # noqa: E402  (helpers: tokenizer, packing, export)
from held_out import held_out as held_out_documents, is_held_out, read_corpus  # noqa: E402

# The shipped pair stays about the size of the first default (17.8 MB of the repository, 14.7 MB of it the main
# model): every GPU run carries the repository, and the tests read the model on every CI run.
VOCAB_SIZE = 6144
CONTEXT = 2048  # max_position_embeddings, and the length of the training windows
BOS_ID, EOS_ID, PAD_ID = base.BOS_ID, base.EOS_ID, base.PAD_ID
SEED = 20261204
TOKENIZER_TRAINING_SHARE = 3  # the tokenizer sees every 3rd training document
BATCH_SIZE = 32  # windows of CONTEXT tokens: 65,536 tokens a step

MAIN_SHAPE = dict(hidden_size=256, num_hidden_layers=7, num_attention_heads=8, num_key_value_heads=4,
                  intermediate_size=768)
DRAFT_SHAPE = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=384)
TRAINING = {  # peak learning rate, warm-up steps
    "ember-tiny": (2e-3, 150),
    "ember-tiny-draft": (3e-3, 100),
}
SAMPLE_PROMPTS = [
    "The meaning of life is",
    "In the beginning",
    "To install a package on Debian,",
    "A list in Python is",
    "The kernel",
    "Friendship is",
    "computer: a machine that",
    "And the LORD said unto Moses,",
]
ACCEPTANCE_PROMPTS = 64
ACCEPTANCE_PROMPT_TOKENS = 32
ACCEPTANCE_NEW_TOKENS = 128
ACCEPTANCE_GAMMAS = (1, 2, 3, 4, 5, 6, 8)
DEVICE = "cuda"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def configure_base() -> None:
    """train_tiny's helpers read these module globals when called."""
    base.VOCAB_SIZE = VOCAB_SIZE
    base.MODEL_MAX_LENGTH = CONTEXT
    base.DEVICE = DEVICE
    base.SAMPLE_PROMPTS = SAMPLE_PROMPTS
    base.SEED = SEED


# ---------------------------------------------------------------------------------------------------
# Data


def validation_windows(stream: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping CONTEXT+1 windows from the start of the held-out stream (up to count of them)."""
    n = min(count, (len(stream) - 1) // CONTEXT)
    if n == 0:
        raise ValueError(f"held-out stream of {len(stream)} tokens is shorter than one window")
    starts = torch.arange(n) * CONTEXT
    windows = stream[starts[:, None] + torch.arange(CONTEXT + 1)]
    return windows[:, :-1].to(DEVICE), windows[:, 1:].to(DEVICE)


# ---------------------------------------------------------------------------------------------------
# Training


def evaluate(model, inputs: torch.Tensor, targets: torch.Tensor, batch: int = 16) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16):
        for i in range(0, len(inputs), batch):
            logits = model(input_ids=inputs[i:i + batch], use_cache=False).logits
            total += F.cross_entropy(logits.float().reshape(-1, VOCAB_SIZE), targets[i:i + batch].reshape(-1),
                                     reduction="sum").item()
            count += targets[i:i + batch].numel()
    model.train()
    return total / count


class Trainee:
    def __init__(self, name: str, shape: dict, peak_lr: float, warmup: int):
        from transformers import LlamaForCausalLM

        torch.manual_seed(SEED)
        self.name = name
        self.config = base.llama_config(shape)
        self.model = LlamaForCausalLM(self.config).to(DEVICE)
        self.model.train()
        self.parameters = base.parameter_count(self.model)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                            {"params": no_decay, "weight_decay": 0.0}],
                                           lr=peak_lr, betas=(0.9, 0.95), eps=1e-8, fused=DEVICE == "cuda")
        self.peak_lr, self.warmup = peak_lr, warmup
        self.step = 0
        self.lr = 0.0
        self.loss = None
        self.smoothed = None
        self.rows = []
        self.best = {"val_loss": math.inf, "step": 0, "state": None}

    def train_step(self, inputs, targets, progress: float) -> None:
        self.lr = self.peak_lr * min(1.0, (self.step + 1) / self.warmup) * (
            0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            logits = self.model(input_ids=inputs, use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, VOCAB_SIZE), targets.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.loss = loss.detach()
        self.step += 1

    def record(self, elapsed: float, val_loss=None) -> None:
        value = self.loss.item()
        self.smoothed = value if self.smoothed is None else 0.9 * self.smoothed + 0.1 * value
        self.rows.append({"step": self.step, "elapsed_s": round(elapsed, 2), "lr": self.lr, "train_loss": value,
                          "train_loss_smoothed": self.smoothed, "val_loss": "" if val_loss is None else val_loss})
        if val_loss is not None and val_loss < self.best["val_loss"]:
            self.best = {"val_loss": val_loss, "step": self.step,
                         "state": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}

    def finish(self, out_dir: Path) -> dict:
        final_val = self.rows[-1]["val_loss"]
        if self.best["state"] is not None and self.best["step"] != self.step:
            self.model.load_state_dict(self.best["state"])
        self.best["state"] = None
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "loss.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.rows[0].keys()))
            writer.writeheader()
            writer.writerows(self.rows)
        config = self.config.to_dict()
        shape = {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                        "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size",
                                        "max_position_embeddings") if k in config}
        return {"parameters": self.parameters, "shape": shape,
                "steps": self.step, "seconds": self.rows[-1]["elapsed_s"], "batch_size": BATCH_SIZE,
                "context": CONTEXT, "tokens_seen": self.step * BATCH_SIZE * CONTEXT, "peak_lr": self.peak_lr,
                "warmup_steps": self.warmup, "final_train_loss_smoothed": self.smoothed,
                "final_val_loss": final_val, "kept_step": self.best["step"], "kept_val_loss": self.best["val_loss"]}


def train_both(train_stream: torch.Tensor, val_stream: torch.Tensor, seconds: float, eval_seconds: float,
               train_dir: Path) -> dict:
    trainees = [Trainee(name, shape, *TRAINING[name]) for name, shape in
                (("ember-tiny", MAIN_SHAPE), ("ember-tiny-draft", DRAFT_SHAPE))]
    for t in trainees:
        log(f"{t.name}: {t.parameters:,} parameters, {t.config.to_dict().get('rope_parameters')}")
    batches = base.Batches(train_stream, BATCH_SIZE, CONTEXT, DEVICE, SEED)
    val_inputs, val_targets = validation_windows(val_stream, 64)
    log(f"training for {seconds:.0f} s; validation on {val_inputs.numel():,} held-out tokens every {eval_seconds:.0f} s")
    start = time.monotonic()
    elapsed, next_eval = 0.0, eval_seconds
    while True:
        inputs, targets = batches.next()
        for t in trainees:
            t.train_step(inputs, targets, elapsed / seconds)
        if trainees[0].step % 25 == 0 or trainees[0].step == 1:
            torch.cuda.synchronize() if DEVICE == "cuda" else None
            elapsed = time.monotonic() - start
            done = elapsed >= seconds
            evaluate_now = elapsed >= next_eval or done
            for t in trainees:
                t.record(elapsed, evaluate(t.model, val_inputs, val_targets) if evaluate_now else None)
            if evaluate_now:
                next_eval += eval_seconds
                log(" | ".join(f"{t.name} step {t.step} lr {t.lr:.2e} train {t.smoothed:.3f} val "
                               f"{t.rows[-1]['val_loss']:.3f}" for t in trainees) + f" | {elapsed:.0f}s")
            if done:
                break
    results = {}
    for t in trainees:
        results[t.name] = (t.model, t.finish(train_dir / t.name))
        log(f"{t.name}: {results[t.name][1]['steps']} steps, kept step {results[t.name][1]['kept_step']} "
            f"(val {results[t.name][1]['kept_val_loss']:.4f})")
    return results


# ---------------------------------------------------------------------------------------------------
# Evaluation of exported files


def load_fp32(model_dir: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16)
    return model.float().to(DEVICE).eval()


def held_out_scores(model_dir: Path, documents: list[str], sources: list[str], window: int) -> dict:
    """Negative log-likelihood of every held-out document given <s>, in windows of at most `window` tokens
    (each window starts afresh): per source and in total, as nats, bits per byte and per-token perplexity.
    The end-of-document token is not scored, so every model is charged for exactly the documents' bytes."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    model = load_fp32(model_dir)
    vocab = model.config.vocab_size
    pieces = []  # (length, source index, inputs, targets)
    names = sorted(set(sources))
    per_source = {name: {"documents": 0, "bytes": 0, "characters": 0, "tokens": 0, "nats": 0.0} for name in names}
    for doc, source, encoding in zip(documents, sources, tokenizer.encode_batch(documents, add_special_tokens=False)):
        ids = [BOS_ID] + encoding.ids
        stats = per_source[source]
        stats["documents"] += 1
        stats["bytes"] += len(doc.encode("utf-8"))
        stats["characters"] += len(doc)
        stats["tokens"] += len(ids) - 1
        for start in range(0, len(ids) - 1, window):
            n = min(window, len(ids) - 1 - start)
            pieces.append((n, source, ids[start:start + n], ids[start + 1:start + 1 + n]))
    pieces.sort(key=lambda p: p[0])
    budget = 65536
    i = 0
    with torch.no_grad():
        while i < len(pieces):
            longest = pieces[i][0]
            j = i
            while j < len(pieces) and (j - i + 1) * pieces[j][0] <= budget:
                longest = pieces[j][0]
                j += 1
            j = max(j, i + 1)
            group = pieces[i:j]
            inputs = torch.full((len(group), longest), PAD_ID, dtype=torch.long)
            targets = torch.full((len(group), longest), -100, dtype=torch.long)
            for row, (n, _, inp, tgt) in enumerate(group):
                inputs[row, :n] = torch.tensor(inp)
                targets[row, :n] = torch.tensor(tgt)
            inputs, targets = inputs.to(DEVICE), targets.to(DEVICE)
            logits = model(input_ids=inputs, use_cache=False).logits.float()
            nll = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="none",
                                  ignore_index=-100).reshape(targets.shape).sum(dim=1).tolist()
            for (n, source, _, _), value in zip(group, nll):
                per_source[source]["nats"] += value
            i = j
    del model

    def finish(stats: dict) -> dict:
        return {**stats, "bits_per_byte": stats["nats"] / math.log(2) / stats["bytes"],
                "bits_per_character": stats["nats"] / math.log(2) / stats["characters"],
                "nats_per_token": stats["nats"] / stats["tokens"],
                "perplexity_per_token": math.exp(stats["nats"] / stats["tokens"]),
                "bytes_per_token": stats["bytes"] / stats["tokens"]}

    total = {key: sum(s[key] for s in per_source.values()) for key in ("documents", "bytes", "characters", "tokens", "nats")}
    return {"window": window, "total": finish(total), "per_source": {n: finish(s) for n, s in per_source.items()}}


def greedy_continue(model, prompts: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Plain argmax, recomputing the whole sequence each step (no cache, no end-of-sequence stop)."""
    sequence = prompts
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(input_ids=sequence, use_cache=False).logits[:, -1, :]
            sequence = torch.cat([sequence, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return sequence


def simulate_acceptance(agree: list[list[bool]], gamma: int) -> dict:
    """agree[r][j]: whether the draft's greedy token at generated position j of row r is the main model's.
    Each round from position p proposes min(gamma, left) tokens, accepts the run of agreements from p,
    and the main model adds one token of its own (the correction, or the bonus token)."""
    accepted = proposed = rounds = generated = 0
    for row in agree:
        generated += len(row)
        p = 0
        while p < len(row):
            k = min(gamma, len(row) - p)
            a = 0
            while a < k and row[p + a]:
                a += 1
            accepted += a
            proposed += k
            rounds += 1
            p += a + 1
    return {"acceptance_rate": accepted / proposed, "tokens_per_main_pass": generated / rounds}


def acceptance(main_dir: Path, draft_dir: Path, documents: list[str]) -> dict:
    """Greedy speculative decoding's acceptance, simulated exactly: with greedy drafting and verification,
    the draft's k-th proposal counts only if the first k-1 matched the main model's greedy tokens, so
    its context is then the main model's own sequence. One draft pass over the main model's greedy
    continuation therefore tells, at every position, whether the draft's greedy token agrees; each round
    starting at position p accepts the run of agreements from p (at most gamma) and the main model adds
    one token of its own."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(main_dir / "tokenizer.json"))
    prompts = []
    for doc in documents:
        ids = tokenizer.encode(doc, add_special_tokens=False).ids
        if len(ids) >= ACCEPTANCE_PROMPT_TOKENS:
            prompts.append([BOS_ID] + ids[:ACCEPTANCE_PROMPT_TOKENS])
        if len(prompts) == ACCEPTANCE_PROMPTS:
            break
    prompt_tensor = torch.tensor(prompts, device=DEVICE)
    main = load_fp32(main_dir)
    sequence = greedy_continue(main, prompt_tensor, ACCEPTANCE_NEW_TOKENS)
    del main
    draft = load_fp32(draft_dir)
    with torch.no_grad():
        draft_tokens = draft(input_ids=sequence[:, :-1], use_cache=False).logits.argmax(dim=-1)
    del draft
    first = prompt_tensor.shape[1]
    agree = (draft_tokens[:, first - 1:] == sequence[:, first:]).cpu().tolist()  # [prompts, new tokens]
    result = {"prompts": len(prompts), "prompt_tokens": first, "new_tokens": ACCEPTANCE_NEW_TOKENS,
              "next_token_agreement": sum(map(sum, agree)) / sum(map(len, agree)), "by_gamma": {}}
    for gamma in ACCEPTANCE_GAMMAS:
        result["by_gamma"][str(gamma)] = simulate_acceptance(agree, gamma)
    texts = [tokenizer.decode(row[first:], skip_special_tokens=False) for row in sequence[:3].tolist()]
    result["example_continuations"] = [{"prompt": tokenizer.decode(p, skip_special_tokens=True), "greedy": t}
                                       for p, t in zip(prompts[:3], texts)]
    return result


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/models/* and OUT/train/*")
    parser.add_argument("--old-model", type=Path, help="the previous default model, scored on the same held-out text")
    parser.add_argument("--texts", type=Path, help="tokenizer_texts.json, for the tokenizer's self-check")
    parser.add_argument("--train-seconds", type=float, default=330)
    parser.add_argument("--eval-seconds", type=float, default=20)
    parser.add_argument("--finish-by", type=float, default=0,
                        help="epoch seconds by which everything must be done; training ends early enough "
                             "to leave --reserve-seconds for what follows it")
    parser.add_argument("--reserve-seconds", type=float, default=130)
    parser.add_argument("--device", default="cuda", help="cpu only to rehearse the script")
    parser.add_argument("--max-documents", type=int, default=0, help="rehearsal: use only the first N documents")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    configure_base()

    torch.manual_seed(SEED)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    train_dir = args.out / "train"
    models_dir = args.out / "models"
    train_dir.mkdir(parents=True, exist_ok=True)
    summary = {"versions": base.versions(), "failures": []}

    def write_summary() -> None:
        (train_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")

    def stage(name: str, action) -> bool:
        t0 = time.monotonic()
        try:
            action()
            ok = True
        except Exception:
            summary["failures"].append(f"{name}: " + traceback.format_exc())
            traceback.print_exc()
            ok = False
        summary.setdefault("stage_seconds", {})[name] = round(time.monotonic() - t0, 1)
        write_summary()
        return ok

    state = {}

    def data() -> None:
        documents, sources = read_corpus(args.corpus)
        if args.max_documents:
            documents, sources = documents[:args.max_documents], sources[:args.max_documents]
        training = [d for i, d in enumerate(documents) if not is_held_out(i)]
        state["held_out"], state["held_out_sources"] = held_out_documents(documents, sources)
        t0 = time.monotonic()
        tokenizer = base.train_tokenizer(training[::TOKENIZER_TRAINING_SHARE], models_dir / "ember-tiny")
        tokenizer_seconds = time.monotonic() - t0
        base.copy_tokenizer(models_dir / "ember-tiny", models_dir / "ember-tiny-draft")
        log(f"tokenizer trained in {tokenizer_seconds:.1f} s")
        t0 = time.monotonic()
        state["train_stream"] = base.encode_documents(tokenizer, training)
        state["val_stream"] = base.encode_documents(tokenizer, state["held_out"])
        counts = {}
        for s in sources:
            counts[s] = counts.get(s, 0) + 1
        summary["data"] = {
            "corpus_bytes": args.corpus.stat().st_size, "documents": len(documents),
            "training_documents": len(training), "held_out_documents": len(state["held_out"]),
            "documents_by_source": counts,
            "held_out_bytes": sum(len(d.encode()) for d in state["held_out"]),
            "training_tokens": len(state["train_stream"]), "held_out_tokens": len(state["val_stream"]),
            "bytes_per_token": round(sum(len(d.encode()) for d in training) / len(state["train_stream"]), 3),
            "tokenizer_training_documents": len(training[::TOKENIZER_TRAINING_SHARE]),
            "tokenizer_seconds": round(tokenizer_seconds, 1), "encode_seconds": round(time.monotonic() - t0, 1),
        }
        log(f"data: {summary['data']}")
        if args.texts:
            texts = json.loads(args.texts.read_text(encoding="utf-8"))
            summary["tokenizer_check"] = base.check_tokenizer(models_dir / "ember-tiny", texts)
            log(f"tokenizer check: {summary['tokenizer_check']}")

    if not stage("data", data):
        return 1

    def train() -> None:
        seconds = args.train_seconds
        if args.finish_by:
            seconds = min(seconds, args.finish_by - args.reserve_seconds - time.time())
            log(f"training budget {seconds:.0f} s (finish by {time.strftime('%H:%M:%S', time.localtime(args.finish_by))})")
        seconds = max(seconds, 10.0)
        results = train_both(state["train_stream"].to(DEVICE), state["val_stream"], seconds, args.eval_seconds,
                             train_dir)
        for name, (model, info) in results.items():
            summary[name] = info
            base.save_pretrained(model, models_dir / name)
            summary[name]["files"] = {p.name: p.stat().st_size for p in sorted((models_dir / name).iterdir())}
            log(f"{name}: exported {summary[name]['files']}")
        del results
        if DEVICE == "cuda":
            torch.cuda.empty_cache()

    if not stage("train", train):
        return 1

    def held_out() -> None:
        torch.backends.cuda.matmul.allow_tf32 = False
        scores = {}
        models = [("ember-tiny (new)", models_dir / "ember-tiny", CONTEXT),
                  ("ember-tiny (new), 1024-token windows", models_dir / "ember-tiny", 1024),
                  ("ember-tiny-draft (new)", models_dir / "ember-tiny-draft", CONTEXT)]
        if args.old_model:
            old_context = json.loads((args.old_model / "config.json").read_text())["max_position_embeddings"]
            models.append(("ember-tiny (previous)", args.old_model, old_context))
        for label, directory, window in models:
            scores[label] = held_out_scores(directory, state["held_out"], state["held_out_sources"], window)
            total = scores[label]["total"]
            log(f"held-out {label}: {total['bits_per_byte']:.4f} bits/byte, per-token perplexity "
                f"{total['perplexity_per_token']:.2f} ({total['tokens']} tokens, window {window})")
            summary["held_out"] = scores
            write_summary()

    def accept() -> None:
        summary["acceptance"] = acceptance(models_dir / "ember-tiny", models_dir / "ember-tiny-draft", state["held_out"])
        log(f"acceptance: {json.dumps(summary['acceptance']['by_gamma'])}")

    def samples() -> None:
        summary["samples"] = {name: base.sample(models_dir / name) for name in ("ember-tiny", "ember-tiny-draft")}

    def curve() -> None:
        base.plot({name: train_dir / name / "loss.csv" for name in ("ember-tiny", "ember-tiny-draft")},
                  train_dir / "loss_curve.png", x="elapsed_s", top=7,
                  xlabel=f"training time (s); steps of {BATCH_SIZE} x {CONTEXT} tokens")

    for name, action in (("held_out", held_out), ("acceptance", accept), ("samples", samples), ("plot", curve)):
        stage(name, action)
    log(f"failures: {len(summary['failures'])}")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
