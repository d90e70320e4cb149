#!/usr/bin/env python3
"""Writes a trained shapes model (train.py's --work folder) in the published Orthus layout.

    python ops/train/export.py --work train-work --out cluster/models/orthus-shapes

Tensor names, dtype (bfloat16), sharding (two shards and an index), config.json and tokenizer.json follow the published
checkpoints, so the engine loads it exactly as it loads Orthus-7B. The latent scale is absorbed into the convolutions:
quant_conv is multiplied by the factor that gives raw latents unit variance x 10 (the x0.1 convention of the diffusion
head then sees unit variance), and post_quant_conv is divided by it.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reference"))
import chameleon_tokenizer as ct  # noqa: E402
from make_fixtures import write_sharded  # noqa: E402

from train import CODES, LATENT_SCALE, VOCAB_SIZE  # noqa: E402


def published(trained: dict) -> dict:
    ema, decoder = trained["ema"], trained["decoder"]
    scale = LATENT_SCALE / trained["latent_std"]
    tensors = {}
    for name, value in ema.items():
        if name.startswith("hf.model.vqmodel.post_quant_conv."):
            continue  # transformers' encoder-side module carries an unused copy; the decoder's is exported below
        if name.startswith("hf.model."):
            tensors["model." + name[len("hf.model.") :]] = value
        elif name.startswith("hf.lm_head."):
            tensors[name[len("hf.") :]] = value
        elif name == "codebook_in":
            tensors["model.codebook_in.weight"] = value
        elif name.startswith("head."):
            tensors["mlp_head." + name[len("head.") :]] = value
        else:
            raise ValueError(f"unexpected trained tensor {name}")
    for name, value in decoder.items():
        if name.startswith("post_quant_conv."):
            tensors["model.vqmodel." + name] = value
        else:
            tensors["model.vqmodel.decoder." + name] = value

    tensors["model.vqmodel.quant_conv.weight"] = tensors["model.vqmodel.quant_conv.weight"] * scale
    tensors["model.vqmodel.quant_conv.bias"] = tensors["model.vqmodel.quant_conv.bias"] * scale
    tensors["model.vqmodel.post_quant_conv.weight"] = tensors["model.vqmodel.post_quant_conv.weight"] / scale
    tensors["model.vqmodel.quantize.embedding.weight"] = tensors["model.codebook_in.weight"].clone()
    # Rows no input or output ever uses are zero: image codes past the codebook, reserved ids as inputs, and image
    # codes as text outputs (the engine masks them). They stay in place so that every id keeps its published row.
    embed = tensors["model.embed_tokens.weight"].clone()
    embed[ct.IMAGE_CODE_FIRST + CODES : ct.EOI] = 0
    embed[ct.BOI + 1 : ct.SEP] = 0
    tensors["model.embed_tokens.weight"] = embed
    head = tensors["lm_head.weight"].clone()
    head[ct.IMAGE_CODE_FIRST : ct.EOI] = 0
    tensors["lm_head.weight"] = head
    assert embed.shape[0] == VOCAB_SIZE
    return {k: v.to(torch.bfloat16).contiguous() for k, v in sorted(tensors.items())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--guidance", type=float, default=1.5,
                        help="guidance_scale for generation_config.json (chosen on the validation set, README)")
    args = parser.parse_args()
    trained = torch.load(args.work / "trained.pt", weights_only=False)
    args.out.mkdir(parents=True, exist_ok=True)
    tensors = published(trained)
    write_sharded(tensors, args.out, ("model.embed_tokens.", "model.layers.0.", "model.layers.1.", "model.vqmodel."))
    shutil.copy(args.work / "config.json", args.out / "config.json")
    shutil.copy(args.work / "tokenizer.json", args.out / "tokenizer.json")
    # The model's own sampling defaults, read by every orthus command that does not set --cfg.
    (args.out / "generation_config.json").write_text(json.dumps({"guidance_scale": args.guidance, "interleaved_guidance_scale": args.guidance}, indent=2) + "\n")
    total = sum(t.numel() * 2 for t in tensors.values())
    print(f"wrote {len(tensors)} tensors ({total / 1e6:.1f} MB) to {args.out}")


if __name__ == "__main__":
    main()
