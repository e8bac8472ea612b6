#!/usr/bin/env python3
"""A compiled-PyTorch Llama decoder: the peer that Ember's e2e figures are set beside, on the same GPU in the same run.

The model is written out here (no transformers): a Llama-3.1-8B-shaped decoder with random bf16 weights, q/k/v and
gate/up fused as inference engines fuse them, a static KV cache per layer ([batch, kv_heads, max_len, head_dim],
written with index_copy_), attention through scaled_dot_product_attention (GQA), greedy sampling on the GPU. Decode
steps run through torch.compile(mode="reduce-overhead", fullgraph=True): Inductor kernels replayed as CUDA graphs.
Prefill runs eagerly (one SDPA over the prompt), as the compiled peers this is modelled on do.

Workloads (Ember's `bench e2e` rows):
  b1-decode     batch 1, 128-token prompt, 256 generated: decode tokens/s over the 255 steps after the first token
  prefill-1024  batch 1, 1024-token prompt: time to the first token (prefill + argmax)
  b64-decode    batch 64, 512-token prompts, 128 generated: decode tokens/s over the 127 steps after the first token
Each figure is the median of timed runs after warm-up runs (the first compiles), timed with CUDA events. One JSON line
per workload on stdout: {"workload", "figure", "unit", "runs", ...}.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 4096, 32, 32, 8, 128, 14336, 128256
ROPE_THETA, EPS = 500000.0, 1e-5


def random_weights(layers, device):
    """Random bf16 weights of the 8B shape (scaled so that activations stay finite), shared by every model built."""
    g = torch.Generator(device=device).manual_seed(1)

    def w(*shape):
        return torch.randn(*shape, generator=g, device=device, dtype=torch.bfloat16) * 0.02

    ones = lambda: torch.ones(HIDDEN, device=device, dtype=torch.bfloat16)
    qkv = (HEADS + 2 * KV_HEADS) * HEAD_DIM
    out = {"embed": w(VOCAB, HIDDEN), "norm": ones(), "lm_head": w(VOCAB, HIDDEN)}
    for i in range(layers):
        out.update({f"l{i}_attn_norm": ones(), f"l{i}_wqkv": w(qkv, HIDDEN), f"l{i}_wo": w(HIDDEN, HEADS * HEAD_DIM),
                    f"l{i}_ffn_norm": ones(), f"l{i}_w13": w(2 * FFN, HIDDEN), f"l{i}_w2": w(HIDDEN, FFN)})
    return out


def rms_norm(x, weight):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * weight


def rope(x, cos, sin):
    # x: [b, heads, t, d]; rotate-half, as Llama does
    x1, x2 = x[..., : HEAD_DIM // 2], x[..., HEAD_DIM // 2:]
    return (x * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)


class Model(torch.nn.Module):
    """Weights and the static KV cache are the module's buffers, so that the compiled decode step's CUDA graphs may
    write the cache in place (mutated buffers are static inputs to Inductor's CUDA graph trees)."""

    def __init__(self, weights, layers, batch, max_len, device):
        super().__init__()
        self.layers = layers
        for name, tensor in weights.items():
            self.register_buffer(name, tensor, persistent=False)
        for i in range(layers):
            self.register_buffer(f"k{i}", torch.zeros(batch, KV_HEADS, max_len, HEAD_DIM, device=device, dtype=torch.bfloat16),
                                 persistent=False)
            self.register_buffer(f"v{i}", torch.zeros(batch, KV_HEADS, max_len, HEAD_DIM, device=device, dtype=torch.bfloat16),
                                 persistent=False)
        inv = 1.0 / (ROPE_THETA ** (torch.arange(0, HEAD_DIM, 2, device=device).float() / HEAD_DIM))
        angles = torch.outer(torch.arange(max_len, device=device).float(), inv)
        self.register_buffer("cos", torch.cat((angles.cos(), angles.cos()), -1).to(torch.bfloat16), persistent=False)
        self.register_buffer("sin", torch.cat((angles.sin(), angles.sin()), -1).to(torch.bfloat16), persistent=False)
        self.register_buffer("mask", torch.tril(torch.ones(max_len, max_len, dtype=torch.bool, device=device)),
                             persistent=False)

    def decode(self, token, position):
        """One decode step of every sequence: the greedy next token, on the GPU."""
        return self.forward(token, position).argmax(-1)

    def forward(self, tokens, positions):
        """tokens [b, t], positions [t]: writes the cache at those positions, returns the last position's logits."""
        b, t = tokens.shape
        x = F.embedding(tokens, self.embed)
        cos, sin = self.cos[positions][None, None], self.sin[positions][None, None]
        decode = t == 1
        mask = self.mask[positions][None, None] if decode else None
        for i in range(self.layers):
            layer = {n: getattr(self, f"l{i}_{n}") for n in ("attn_norm", "wqkv", "wo", "ffn_norm", "w13", "w2")}
            cache_k, cache_v = getattr(self, f"k{i}"), getattr(self, f"v{i}")
            h = rms_norm(x, layer["attn_norm"])
            q, k, v = F.linear(h, layer["wqkv"]).split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
            q = rope(q.view(b, t, HEADS, HEAD_DIM).transpose(1, 2), cos, sin)
            k = rope(k.view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2), cos, sin)
            v = v.view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
            cache_k.index_copy_(2, positions, k)
            cache_v.index_copy_(2, positions, v)
            if decode:  # the static cache, masked to the positions written so far
                a = F.scaled_dot_product_attention(q, cache_k, cache_v, attn_mask=mask, enable_gqa=True)
            else:  # a prompt from position 0: causal attention over its own keys
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + F.linear(a.transpose(1, 2).reshape(b, t, HEADS * HEAD_DIM), layer["wo"])
            gate, up = F.linear(rms_norm(x, layer["ffn_norm"]), layer["w13"]).chunk(2, -1)
            x = x + F.linear(F.silu(gate) * up, layer["w2"])
        return F.linear(rms_norm(x[:, -1], self.norm), self.lm_head)


def timed(fn, warmup, iters):
    """Runs fn warmup + iters times; returns the timed runs' milliseconds (CUDA events around each)."""
    out = []
    for i in range(warmup + iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        if i >= warmup:
            out.append(start.elapsed_time(end))
    return out


def generate_run(model, decode_step, batch, prompt_len, gen_len, device):
    """Prefill then gen_len - 1 compiled decode steps; returns (decode ms) timed by CUDA events."""
    tokens = torch.randint(0, VOCAB, (batch, prompt_len), device=device)
    with torch.no_grad():
        next_token = model.forward(tokens, torch.arange(prompt_len, device=device)).argmax(-1)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for step in range(gen_len - 1):
            position = torch.tensor([prompt_len + step], device=device)
            next_token = decode_step(next_token[:, None], position).clone()
        end.record()
        end.synchronize()
    return start.elapsed_time(end)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workloads", default="b1-decode,prefill-1024,b64-decode")
    p.add_argument("--layers", type=int, default=LAYERS)
    a = p.parse_args()
    device = "cuda"
    torch.manual_seed(0)
    weights = random_weights(a.layers, device)
    gpu = torch.cuda.get_device_name()
    for workload in a.workloads.split(","):
        t0 = time.time()
        if workload == "prefill-1024":
            model = Model(weights, a.layers, 1, 1024, device)
            tokens = torch.randint(0, VOCAB, (1, 1024), device=device)
            positions = torch.arange(1024, device=device)
            with torch.no_grad():
                runs = timed(lambda: model.forward(tokens, positions).argmax(-1), warmup=2, iters=7)
            figure, unit = statistics.median(runs), "ms"
        else:
            batch, prompt_len, gen_len = (1, 128, 256) if workload == "b1-decode" else (64, 512, 128)
            model = Model(weights, a.layers, batch, prompt_len + gen_len, device)
            decode_step = torch.compile(model.decode, mode="reduce-overhead", fullgraph=True)
            runs = []
            for i in range(1 + 3):  # the first run compiles and captures
                ms = generate_run(model, decode_step, batch, prompt_len, gen_len, device)
                if i >= 1:
                    runs.append(batch * (gen_len - 1) / (ms / 1e3))
            figure, unit = statistics.median(runs), "tok/s"
            torch._dynamo.reset()
        print(json.dumps({"workload": workload, "figure": figure, "unit": unit, "runs": runs, "gpu": gpu,
                          "torch": torch.__version__, "seconds": round(time.time() - t0, 1)}), flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
