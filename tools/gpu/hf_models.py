#!/usr/bin/env python3
"""Random-weight models of every family Ember runs, built and run by HF transformers on the GPU host, for
HfGpuComparisonTest (Ember's CUDA backend against transformers on the same saved weights).

For each family (Llama 3, Qwen2, Qwen3, Qwen3 with YaRN, Llama with dynamic NTK scaling, Llama with attention_bias
and mlp_bias, Mistral), at a small but not tiny shape (hidden 512-1024, 4 layers,
vocabulary 8192): build with random weights (norms and biases randomised too, as make_fixtures.py does), save
with save_pretrained in bfloat16, reload the saved model upcast to float32 on the GPU (TF32 off, eager
attention) and, for a few prompts, record:
  hf_reference.json       prompts, each one's greedy continuation (CONTINUATION tokens), versions
  hf_logits.safetensors   "logits.<p>": F32 [CONTINUATION + 1, vocab], the logits at the last prompt position
                          and at each continuation token (what Ember's prefill and decode steps return when fed
                          the same tokens); "logits_bf16.<p>": the same from the bf16 model, for scale.

Usage: python3 tools/gpu/hf_models.py OUT_DIR
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_fixtures import build_random_model, load, make_config, save_model, versions  # noqa: E402

SEED = 20261124
CONTINUATION = 8
PROMPT_LENGTHS = (7, 40, 130)  # 130 passes Mistral's window of 64 and spans several prefill tiles


def specs() -> dict:
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

    # initializer_range 0.02 (transformers' default, that of the released models): at 0.05 these shapes are so
    # ill-conditioned in bf16 that transformers' own bf16 run is 2.2-2.4e-2 away from its fp32 run (measured on the
    # H100, 2026-11-23), which no bf16 implementation could be held to 2e-2 against.
    common = dict(vocab_size=8192, num_hidden_layers=4, max_position_embeddings=4096, initializer_range=0.02,
                  bos_token_id=1, eos_token_id=2)
    return {
        "hf-llama3": make_config(LlamaConfig, {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 1024},
                                 hidden_size=768, intermediate_size=2048, num_attention_heads=12, num_key_value_heads=4,
                                 rms_norm_eps=1e-5, tie_word_embeddings=False, **common),
        "hf-qwen2": make_config(Qwen2Config, {"rope_type": "default", "rope_theta": 1000000.0},
                                hidden_size=896, intermediate_size=2432, num_attention_heads=14, num_key_value_heads=2,
                                rms_norm_eps=1e-6, tie_word_embeddings=True, **common),
        "hf-qwen3": make_config(Qwen3Config, {"rope_type": "default", "rope_theta": 1000000.0},
                                hidden_size=1024, intermediate_size=3072, num_attention_heads=16, num_key_value_heads=8,
                                head_dim=128, rms_norm_eps=1e-6, tie_word_embeddings=False, **common),
        # YaRN as Qwen3's model card configures it for long contexts: pairs 0-3 kept, a ramp to pair 12, the rest
        # interpolated, attention scores x1.30 (the attention factor 1.139 squared). The factor equals the ratio of the
        # contexts (4096 / 1024), which transformers versions that derive the factor from that ratio also read.
        "hf-qwen3-yarn": make_config(Qwen3Config, {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                                   "original_max_position_embeddings": 1024},
                                     hidden_size=512, intermediate_size=1536, num_attention_heads=8, num_key_value_heads=4,
                                     head_dim=64, rms_norm_eps=1e-6, tie_word_embeddings=False, **common),
        # Dynamic NTK scaling, with the embeddings tied: within the original context transformers computes the plain
        # frequencies, which is the context Ember gives such a model.
        "hf-llama-dynamic": make_config(LlamaConfig, {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
                                        hidden_size=512, intermediate_size=1408, num_attention_heads=8,
                                        num_key_value_heads=8, rms_norm_eps=1e-6, tie_word_embeddings=True, **common),
        # attention_bias and mlp_bias: biases on q, k, v, o, gate, up and down.
        "hf-llama-bias": make_config(LlamaConfig, {"rope_type": "default", "rope_theta": 10000.0},
                                     hidden_size=512, intermediate_size=1408, num_attention_heads=8, num_key_value_heads=2,
                                     rms_norm_eps=1e-5, attention_bias=True, mlp_bias=True, tie_word_embeddings=False,
                                     **common),
        "hf-mistral": make_config(MistralConfig, {"rope_type": "default", "rope_theta": 10000.0},
                                  hidden_size=512, intermediate_size=1536, num_attention_heads=8, num_key_value_heads=2,
                                  rms_norm_eps=1e-5, sliding_window=64, tie_word_embeddings=False, **common),
    }


def logits_at(model, tokens: list[int], positions: slice) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=torch.tensor([tokens], device="cuda"), use_cache=False).logits[0].float()
    return out[positions].cpu().contiguous()


def main(out: Path) -> None:
    from safetensors.torch import save_file

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(SEED)
    for index, (name, config) in enumerate(specs().items()):
        directory = out / name
        save_model(build_random_model(config, torch.bfloat16, SEED + index), directory)
        prompts = [torch.randint(3, config.vocab_size, (n,), generator=generator).tolist() for n in PROMPT_LENGTHS]
        fp32 = load(directory, torch.bfloat16, upcast=True).cuda().eval()
        bf16 = load(directory, torch.bfloat16, upcast=False).cuda().eval()
        tensors, continuations = {}, []
        for p, prompt in enumerate(prompts):
            sequence = list(prompt)
            for _ in range(CONTINUATION):  # greedy by recomputation: no cache to differ from
                sequence.append(int(logits_at(fp32, sequence, slice(-1, None))[0].argmax()))
            continuations.append(sequence[len(prompt):])
            # Positions len(prompt)-1 .. end-1: the prompt's last token, then each continuation token fed back.
            span = slice(len(prompt) - 1, len(sequence))
            tensors[f"logits.{p}"] = logits_at(fp32, sequence, span)[:CONTINUATION + 1].contiguous()
            tensors[f"logits_bf16.{p}"] = logits_at(bf16, sequence, span)[:CONTINUATION + 1].contiguous()
        save_file(tensors, str(directory / "hf_logits.safetensors"))
        (directory / "hf_reference.json").write_text(json.dumps(
            {**versions(), "device": torch.cuda.get_device_name(), "reference": "float32-upcast model, TF32 off, eager attention",
             "prompts": prompts, "continuations": continuations}, indent=1) + "\n")
        noise = max(float((tensors[f"logits_bf16.{p}"] - tensors[f"logits.{p}"]).norm() / tensors[f"logits.{p}"].norm())
                    for p in range(len(prompts)))
        print(f"[hf] {name}: {sum(p.numel() for p in fp32.parameters()) / 1e6:.1f}M parameters, prompts {PROMPT_LENGTHS}, "
              f"transformers' own bf16-vs-fp32 logits error up to {noise:.2e}", flush=True)
        del fp32, bf16
        torch.cuda.empty_cache()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: hf_models.py OUT_DIR")
    main(Path(sys.argv[1]))
