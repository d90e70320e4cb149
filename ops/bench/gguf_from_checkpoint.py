#!/usr/bin/env python3
"""Writes a bf16 Orthus/Chameleon checkpoint's text model as a GGUF file for llama.cpp's `llama-bench`.

llama.cpp's own converter (convert_hf_to_gguf.py) needs PyTorch; this does the same for the checkpoints
`orthus bench` generates, with numpy and llama.cpp's gguf-py only:
- the architecture is Chameleon (an Orthus checkpoint says OrthusForConditionalGeneration);
- the Orthus-only tensors (VQ-VAE, diffusion head, codebook_in) are dropped;
- q and k projections are permuted to llama.cpp's RoPE layout, and the q/k norms as its Chameleon converter does;
- the tokenizer's pre-tokenizer is "chameleon" (the converter finds it from a hash of the tokenizer's output);
- norms are float32, as llama.cpp's graphs take them.

Usage: gguf_from_checkpoint.py MODEL_FOLDER OUT.gguf --gguf-py LLAMA_CPP/gguf-py
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def tensors(folder):
    """Every tensor of the checkpoint as (name, dtype string, shape, raw bytes as a numpy uint8 view)."""
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    for name in files:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            length = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(length))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
        for tensor, entry in sorted(header.items()):
            if tensor == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            yield tensor, entry["dtype"], entry["shape"], data[begin:end]


def rope_permute(bits, heads):
    """llama.cpp's Llama permutation of q/k projection rows (pairs of halves become interleaved)."""
    rows = bits.shape[0]
    return bits.reshape(heads, 2, rows // heads // 2, *bits.shape[1:]).swapaxes(1, 2).reshape(bits.shape)


def norm_permute(bits, heads, hidden):
    """The Chameleon converter's `_reverse_hf_permute` of a q/k norm, on the first head's row, for every head."""
    head_dim = hidden // heads
    row = bits[0].reshape(2, head_dim // 2).T.reshape(1, -1)
    return np.repeat(row, heads, axis=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    args = parser.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf

    config = json.load(open(os.path.join(args.model, "config.json")))
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    arch = gguf.MODEL_ARCH.CHAMELEON
    writer = gguf.GGUFWriter(args.out, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_context_length(config.get("max_position_embeddings", 4096))
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(config.get("rope_theta", 10000.0))
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-5))
    writer.add_swin_norm(config.get("swin_norm", False))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)

    tokenizer = json.load(open(os.path.join(args.model, "tokenizer.json")))
    vocab = dict(tokenizer["model"]["vocab"])
    added = {t["id"]: t for t in tokenizer.get("added_tokens", [])}
    for token in added.values():
        vocab[token["content"]] = token["id"]
    by_id = {i: t for t, i in vocab.items()}
    size = config["vocab_size"]
    tokens, types = [], []
    for i in range(size):
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        if i not in by_id:
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            types.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    merges = tokenizer["model"].get("merges", [])
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("chameleon")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config.get("bos_token_id", 0))
    writer.add_eos_token_id(config.get("eos_token_id", 2))

    names = gguf.get_tensor_name_map(arch, layers)
    for name, dtype, shape, raw in tensors(args.model):
        if name.startswith(("model.vqmodel.", "mlp_head.", "model.codebook_in")):
            continue
        if dtype != "BF16":
            sys.exit(f"{name} is {dtype}: this converter takes bf16 checkpoints")
        bits = np.asarray(raw).view(np.uint16).reshape(shape)
        if name.endswith("q_proj.weight"):
            bits = rope_permute(bits, heads)
        elif name.endswith("k_proj.weight"):
            bits = rope_permute(bits, kv_heads)
        elif name.endswith(("q_norm.weight", "q_norm.bias")):
            bits = norm_permute(bits, heads, hidden)
        elif name.endswith(("k_norm.weight", "k_norm.bias")):
            bits = norm_permute(bits, kv_heads, hidden)
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            sys.exit(f"no GGUF name for {name}")
        if bits.ndim == 1 or "norm" in name:
            # Norm weights and biases are float32 in llama.cpp's graphs (its converter writes them so).
            writer.add_tensor(mapped, (np.ascontiguousarray(bits).astype(np.uint32) << 16).view(np.float32))
            continue
        data = np.ascontiguousarray(bits).view(np.uint8)
        writer.add_tensor(mapped, data, raw_shape=data.shape, raw_dtype=gguf.GGMLQuantizationType.BF16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
