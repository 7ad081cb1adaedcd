#!/usr/bin/python3
"""Random-weight Hub-layout checkpoint with a real Qwen config, in BF16, for
benchmarks (written outside the repository):

    bench/make_qwen_checkpoint.py OUT_DIR [--config qwen3-0.6b|qwen2.5-0.5b]

Weights ~ N(0, 0.02) (norm weights 1), so the speed is that of the real
model; the outputs are meaningless. A synthetic byte-level tokenizer.json
(256 byte tokens, filler up to the vocabulary, <|endoftext|>/<|im_start|>/
<|im_end|>) lets GGUF converters and llama.cpp load it."""
import argparse
import json
import os
import struct

import numpy as np

CONFIGS = {
    "qwen3-0.6b": dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=151936,
                       hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, attention_bias=False),
    "qwen2.5-0.5b": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=151936,
                         hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
}


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="qwen3-0.6b")
    a = ap.parse_args()
    cfg = dict(CONFIGS[a.config], bos_token_id=151643, eos_token_id=151645, hidden_act="silu",
               torch_dtype="bfloat16", use_sliding_window=False)
    os.makedirs(a.out, exist_ok=True)
    C, F, L, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", C // H)
    shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    for l in range(L):
        p = f"model.layers.{l}."
        shapes.update({p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
                       p + "self_attn.q_proj.weight": (H * D, C), p + "self_attn.k_proj.weight": (KV * D, C),
                       p + "self_attn.v_proj.weight": (KV * D, C), p + "self_attn.o_proj.weight": (C, H * D),
                       p + "mlp.gate_proj.weight": (F, C), p + "mlp.up_proj.weight": (F, C),
                       p + "mlp.down_proj.weight": (C, F)})
        if cfg["model_type"] == "qwen3":
            shapes.update({p + "self_attn.q_norm.weight": (D,), p + "self_attn.k_norm.weight": (D,)})
        else:
            shapes.update({p + "self_attn.q_proj.bias": (H * D,), p + "self_attn.k_proj.bias": (KV * D,),
                           p + "self_attn.v_proj.bias": (KV * D,)})
    rng = np.random.default_rng(0)
    header, off = {}, 0
    for n, s in shapes.items():
        nb = int(np.prod(s)) * 2
        header[n] = {"dtype": "BF16", "shape": list(s), "data_offsets": [off, off + nb]}
        off += nb
    hj = json.dumps(header).encode()
    hj += b" " * ((-len(hj)) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for n, s in shapes.items():
            if len(s) == 1 and "norm" in n:
                x = np.ones(s, np.float32)
            else:
                x = (rng.standard_normal(s, dtype=np.float32) * np.float32(0.02))
            u = x.view(np.uint32)
            f.write(((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes())
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    for i in range(256, V):  # every id the model can produce decodes
        if not 151643 <= i <= 151645:
            vocab[f"\u0100tok{i}"] = i
    added = [{"id": 151643 + i, "content": t, "special": True, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False}
             for i, t in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])]
    tok = {"version": "1.0", "added_tokens": added, "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                             "use_regex": True},
           "post_processor": None, "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    json.dump(tok, open(os.path.join(a.out, "tokenizer.json"), "w"))
    json.dump({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
              open(os.path.join(a.out, "tokenizer_config.json"), "w"))


if __name__ == "__main__":
    main()
