#!/usr/bin/env python3
"""Builds the tiny test checkpoints in the published Orthus/Chameleon layout and their golden outputs.

Goldens come from independent implementations only: logits and hidden states from transformers'
ChameleonForConditionalGeneration, greedy continuations from its generate(), token ids from the tokenizers library.

    pip install -r ops/reference/requirements.txt
    python ops/reference/make_fixtures.py --out Tests/Fixtures

Writes:
  tiny-orthus/          bf16, two shards + index, Orthus tensors (codebook_in, mlp_head, VQ encoder and decoder)
  tiny-chameleon-gqa/   a plain transformers Chameleon checkpoint: f16, one file, grouped-query attention, no Orthus parts
  goldens/              .npy logits and hidden states, prompts and greedy continuations, the tokenizer corpus
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import ChameleonConfig, ChameleonForConditionalGeneration

import chameleon_tokenizer as ct
from orthus_goldens import write_generation_goldens, write_orthus_goldens, write_test_images
from text_corpus import tokenizer_corpus, training_text

VOCAB_SIZE = 9472
TINY_VQ = {
    "embed_dim": 8,
    "num_embeddings": 8192,
    "double_latent": False,
    "latent_channels": 8,
    "resolution": 16,
    "in_channels": 3,
    "out_channels": 3,
    "base_channels": 32,
    "channel_multiplier": [1, 1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
    "attn_type": "vanilla",
    "initializer_range": 0.02,
}
DIFFUSION_WIDTH = 64
DIFFUSION_BLOCKS = 3
TIME_FREQUENCIES = 256  # MAR's TimestepEmbedder frequency size; fixed by the architecture


def model_config(name: str, vocab: dict, **dims) -> dict:
    config = {
        "architectures": [name],
        "model_type": "chameleon",
        "vocab_size": VOCAB_SIZE,
        "hidden_act": "silu",
        "max_position_embeddings": 512,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-05,
        "use_cache": True,
        "pad_token_id": 1,
        "bos_token_id": 1,  # the published configs carry this stale default; <s> is id 0
        "eos_token_id": 2,
        "tie_word_embeddings": False,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "model_parallel_size": 1,
        "swin_norm": False,
        "mlp_bias": False,
        "image_token_id": ct.IMAGE,
        "boi_token_id": ct.BOI,
        "eoi_token_id": ct.EOI,
        "torch_dtype": "bfloat16",
        "vq_config": dict(TINY_VQ),
        "vocabulary_map": vocab,
    }
    config.update(dims)
    return config


def hf_model(config: dict) -> ChameleonForConditionalGeneration:
    kwargs = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "torch_dtype", "rope_theta", "rope_scaling")}
    kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": config["rope_theta"]}
    hf_config = ChameleonConfig(**kwargs)
    hf_config._attn_implementation = "eager"
    return ChameleonForConditionalGeneration(hf_config).eval()


def randomize(shapes: dict, generator: torch.Generator) -> dict:
    """Weights large enough that logits are well separated (so greedy choices are not near-ties)."""
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("embed_tokens.weight"):
            t = torch.randn(shape, generator=generator)
        elif name.endswith("lm_head.weight"):
            t = torch.randn(shape, generator=generator) * 0.35
        elif "norm" in name and name.endswith(".weight") and len(shape) <= 2:
            t = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        elif name.endswith(".bias") or len(shape) == 1:
            t = 0.05 * torch.randn(shape, generator=generator)
        else:
            fan_in = int(np.prod(shape[1:]))
            t = torch.randn(shape, generator=generator) / np.sqrt(fan_in)
        tensors[name] = t.contiguous()
    return tensors


def decoder_shapes(vq: dict) -> dict:
    """model.vqmodel.decoder.* and post_quant_conv, as the Orthus/Chameleon VQGAN decoder (docs/model.md §2.2)."""
    shapes = {}
    p = "model.vqmodel."

    def resnet(prefix, cin, cout):
        shapes[f"{prefix}.norm1.weight"] = [cin]
        shapes[f"{prefix}.norm1.bias"] = [cin]
        shapes[f"{prefix}.conv1.weight"] = [cout, cin, 3, 3]
        shapes[f"{prefix}.conv1.bias"] = [cout]
        shapes[f"{prefix}.norm2.weight"] = [cout]
        shapes[f"{prefix}.norm2.bias"] = [cout]
        shapes[f"{prefix}.conv2.weight"] = [cout, cout, 3, 3]
        shapes[f"{prefix}.conv2.bias"] = [cout]
        if cin != cout:
            shapes[f"{prefix}.nin_shortcut.weight"] = [cout, cin, 1, 1]
            shapes[f"{prefix}.nin_shortcut.bias"] = [cout]

    def attention(prefix, c):
        shapes[f"{prefix}.norm.weight"] = [c]
        shapes[f"{prefix}.norm.bias"] = [c]
        for conv in ("q", "k", "v", "proj_out"):
            shapes[f"{prefix}.{conv}.weight"] = [c, c, 1, 1]
            shapes[f"{prefix}.{conv}.bias"] = [c]

    shapes[p + "post_quant_conv.weight"] = [vq["latent_channels"], vq["embed_dim"], 1, 1]
    shapes[p + "post_quant_conv.bias"] = [vq["latent_channels"]]
    mult = vq["channel_multiplier"]
    block_in = vq["base_channels"] * mult[-1]
    shapes[p + "decoder.conv_in.weight"] = [block_in, vq["latent_channels"], 3, 3]
    shapes[p + "decoder.conv_in.bias"] = [block_in]
    resnet(p + "decoder.mid.block_1", block_in, block_in)
    attention(p + "decoder.mid.attn_1", block_in)
    resnet(p + "decoder.mid.block_2", block_in, block_in)
    for level in reversed(range(len(mult))):
        block_out = vq["base_channels"] * mult[level]
        for j in range(vq["num_res_blocks"] + 1):
            resnet(f"{p}decoder.up.{level}.block.{j}", block_in, block_out)
            block_in = block_out
        if level != 0:
            shapes[f"{p}decoder.up.{level}.upsample.conv.weight"] = [block_in, block_in, 3, 3]
            shapes[f"{p}decoder.up.{level}.upsample.conv.bias"] = [block_in]
    shapes[p + "decoder.norm_out.weight"] = [block_in]
    shapes[p + "decoder.norm_out.bias"] = [block_in]
    shapes[p + "decoder.conv_out.weight"] = [vq["out_channels"], block_in, 3, 3]
    shapes[p + "decoder.conv_out.bias"] = [vq["out_channels"]]
    return shapes


def orthus_head_shapes(hidden: int, latent: int) -> dict:
    """model.codebook_in and mlp_head.* (MAR SimpleMLPAdaLN as Orthus builds it, docs/model.md §2.3)."""
    w = DIFFUSION_WIDTH
    shapes = {
        "model.codebook_in.weight": [TINY_VQ["num_embeddings"], latent],
        "mlp_head.time_embed.mlp.0.weight": [w, TIME_FREQUENCIES],
        "mlp_head.time_embed.mlp.0.bias": [w],
        "mlp_head.time_embed.mlp.2.weight": [w, w],
        "mlp_head.time_embed.mlp.2.bias": [w],
        "mlp_head.cond_embed.weight": [w, hidden],
        "mlp_head.cond_embed.bias": [w],
        "mlp_head.input_proj.weight": [w, latent],
        "mlp_head.input_proj.bias": [w],
        "mlp_head.final_layer.linear.weight": [latent, w],
        "mlp_head.final_layer.linear.bias": [latent],
        "mlp_head.final_layer.adaLN_modulation.1.weight": [2 * w, w],
        "mlp_head.final_layer.adaLN_modulation.1.bias": [2 * w],
    }
    for i in range(DIFFUSION_BLOCKS):
        b = f"mlp_head.res_blocks.{i}."
        shapes[b + "in_ln.weight"] = [w]
        shapes[b + "in_ln.bias"] = [w]
        shapes[b + "mlp.0.weight"] = [w, w]
        shapes[b + "mlp.0.bias"] = [w]
        shapes[b + "mlp.2.weight"] = [w, w]
        shapes[b + "mlp.2.bias"] = [w]
        shapes[b + "adaLN_modulation.1.weight"] = [3 * w, w]
        shapes[b + "adaLN_modulation.1.bias"] = [3 * w]
    return shapes


def write_sharded(tensors: dict, directory: Path, first_shard_prefixes: tuple):
    """Two shards plus model.safetensors.index.json, as from_pretrained(...).save_pretrained writes them."""
    first = {k: v for k, v in tensors.items() if k.startswith(first_shard_prefixes)}
    second = {k: v for k, v in tensors.items() if k not in first}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for shard, file in zip((first, second), names):
        save_file(shard, str(directory / file), metadata={"format": "pt"})
        weight_map.update({k: file for k in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def golden_logits(model, ids: list) -> tuple:
    """Final-normed hidden states and raw lm_head logits (no image mask) at every position."""
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        logits = model.lm_head(hidden)
    return logits.numpy().astype(np.float32), hidden.numpy().astype(np.float32)


def greedy(model, ids: list, count: int) -> list:
    """transformers' greedy generate with its KV cache; its forward masks the image-code ids."""
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = ct.PAD
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=count, min_new_tokens=count, do_sample=False, use_cache=True
        )
    return out[0, len(ids) :].tolist()


def build_model(directory: Path, goldens: Path, tag: str, config: dict, prompts: dict, dtype, orthus: bool, seed: int):
    directory.mkdir(parents=True, exist_ok=True)
    model = hf_model(config)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    if orthus:
        shapes.update(decoder_shapes(config["vq_config"]))
        shapes.update(orthus_head_shapes(config["hidden_size"], config["vq_config"]["embed_dim"]))
    else:
        # A plain transformers Chameleon checkpoint: its VQ-VAE has an encoder and no decoder.
        shapes = {k: v for k, v in shapes.items() if not k.startswith("model.vqmodel.")}
    generator = torch.Generator().manual_seed(seed)
    tensors = randomize(shapes, generator)
    if orthus:
        # A longer BOI row in lm_head, so greedy text sometimes opens an image (the interleaved golden needs one).
        tensors["lm_head.weight"][ct.BOI] *= 2.5
        # v-predictions of about unit size, as a trained head gives, keep sampled latents at a realistic scale
        # (|x| of a few units at ×0.1); a random head at full scale drives them to ±100.
        tensors["mlp_head.final_layer.linear.weight"] *= 0.2
        tensors["mlp_head.final_layer.linear.bias"] *= 0.2
    stored = {k: t.to(dtype) for k, t in tensors.items()}
    # The reference computes in float32 from exactly the stored (rounded) weights.
    missing, _ = model.load_state_dict({k: t.float() for k, t in stored.items()}, strict=False)
    missing = [m for m in missing if not (not orthus and m.startswith("model.vqmodel."))]
    assert not missing, missing
    model.float()

    if orthus:
        write_sharded(stored, directory, ("model.embed_tokens.", "model.layers.0.", "model.layers.1."))
    else:
        save_file(stored, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    record = {"prompts": {}}
    for name, ids in prompts.items():
        logits, hidden = golden_logits(model, ids)
        np.save(goldens / f"{tag}-{name}-logits.npy", logits)
        np.save(goldens / f"{tag}-{name}-hidden.npy", hidden)
        record["prompts"][name] = {"ids": ids, "greedy32": greedy(model, ids, 32)}
    (goldens / f"{tag}.json").write_text(json.dumps(record, indent=1) + "\n")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = random.Random(1234)

    tokenizer_json = ct.build_tokenizer_json(training_text(rng, 4000), VOCAB_SIZE)
    tokenizer_text = json.dumps(tokenizer_json, ensure_ascii=False)
    tokenizer = Tokenizer.from_str(tokenizer_text)
    vocab = tokenizer_json["model"]["vocab"]

    goldens = args.out / "goldens"
    goldens.mkdir(parents=True, exist_ok=True)
    corpus = tokenizer_corpus(random.Random(99), 2200)
    cases = []
    for text in corpus:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        cases.append(
            {
                "text": text,
                "ids": ids,
                "decoded": tokenizer.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tokenizer.decode(ids, skip_special_tokens=True),
            }
        )
    (goldens / "tokenizer-corpus.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n")

    def prompt(text: str, length: int) -> list:
        ids = [ct.BOS] + tokenizer.encode(text, add_special_tokens=False).ids
        assert len(ids) >= length, (text, len(ids))
        return ids[:length]

    long_text = (
        "A small red circle sits on the left of a large blue square, while a green triangle floats above them. "
        "Describe the picture in detail and answer the question: how many objects are there, and what colour "
        "is the one on the right? The model generates tokens one by one."
    )
    prompts = {
        "p1": [ct.BOS],
        "p7": prompt("A red circle on the left", 7),
        "p64": prompt(long_text, 64),
    }

    for name in ("tiny-orthus", "tiny-chameleon-gqa"):
        directory = args.out / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tokenizer.json").write_text(tokenizer_text + "\n")

    orthus_config = model_config(
        "OrthusForConditionalGeneration",
        vocab,
        hidden_size=32,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
    )
    orthus = build_model(args.out / "tiny-orthus", goldens, "tiny-orthus", orthus_config, prompts, torch.bfloat16, True, 7)

    write_orthus_goldens(args.out / "tiny-orthus", goldens, orthus_config["vq_config"])
    write_test_images(args.out / "images", goldens, orthus_config["vq_config"]["resolution"])
    write_generation_goldens(
        orthus, args.out / "tiny-orthus", goldens, args.out / "images", orthus_config["vq_config"], tokenizer
    )

    gqa_config = model_config(
        "ChameleonForConditionalGeneration",
        vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        torch_dtype="float16",
    )
    # A second prompt length for the GQA checkpoint, kept short so the committed goldens stay small.
    gqa_prompts = {"p7": prompts["p7"], "p20": prompt(long_text, 20)}
    build_model(
        args.out / "tiny-chameleon-gqa", goldens, "tiny-chameleon-gqa", gqa_config, gqa_prompts, torch.float16, False, 11
    )


if __name__ == "__main__":
    main()
