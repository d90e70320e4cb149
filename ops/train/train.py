#!/usr/bin/env python3
"""Trains the bundled shapes model from scratch: an Orthus (Chameleon backbone, soft vision embedding, MAR diffusion
head, Chameleon VQGAN autoencoder) at toy size, on the scenes of world.py.

    python ops/train/train.py --work train-work            # both stages, seeded, CPU
    python ops/train/export.py --work train-work --out cluster/models/orthus-shapes

Stage 1 trains the autoencoder (the VQ-VAE encoder and decoder, used as a continuous autoencoder as Orthus uses it).
Stage 2 freezes it and trains the transformer, the soft embedding and the diffusion head together: the AR loss on
answer tokens, the v-prediction diffusion loss (zero-terminal-SNR schedule, as Orthus trains) on image patches, and
caption dropout to the engine's null prompt for classifier-free guidance.
"""

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import ChameleonConfig, ChameleonForConditionalGeneration

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reference"))
import chameleon_tokenizer as ct  # noqa: E402
from make_fixtures import model_config as fixture_config  # noqa: E402
from orthus_reference import DiffusionHead, VQDecoder, soft_embed  # noqa: E402

import world  # noqa: E402

VOCAB_SIZE = ct.FIRST_TEXT_ID + 256 + 100  # the byte symbols and 100 merges cover every word of the world
CODES = 512  # codebook_in rows: image "codes" 4..4+CODES of the embedding drive the soft embedding
LATENT = 16
LATENT_SCALE = 10.0  # raw latents have unit-variance x 10, so the diffusion target (raw x 0.1) has unit variance
VQ = {
    "embed_dim": LATENT,
    "num_embeddings": CODES,
    "double_latent": False,
    "latent_channels": LATENT,
    "resolution": world.SIZE,
    "in_channels": 3,
    "out_channels": 3,
    "base_channels": 32,
    "channel_multiplier": [1, 1, 2, 2],  # 32 -> 4x4 patches
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
    "attn_type": "vanilla",
    "initializer_range": 0.02,
}
DIMS = {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4}
HEAD_WIDTH, HEAD_BLOCKS = 256, 3
PATCHES = (world.SIZE >> (len(VQ["channel_multiplier"]) - 1)) ** 2


def model_config(vocab: dict) -> dict:
    """The published config layout (as the test fixtures write it) with this model's sizes."""
    return fixture_config(
        "OrthusForConditionalGeneration", vocab, vocab_size=VOCAB_SIZE, max_position_embeddings=256, vq_config=dict(VQ), **DIMS
    )


def hf_model(config: dict) -> ChameleonForConditionalGeneration:
    skip = ("architectures", "model_type", "torch_dtype", "rope_theta", "rope_scaling")
    kwargs = {k: v for k, v in config.items() if k not in skip}
    kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": config["rope_theta"]}
    hf_config = ChameleonConfig(**kwargs)
    hf_config._attn_implementation = "sdpa"
    return ChameleonForConditionalGeneration(hf_config)


def pixels(images) -> torch.Tensor:
    """uint8 [B, 32, 32, 3] -> the engine's input range x * 0.0078 - 1, [B, 3, 32, 32]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() * 0.0078 - 1.0


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


class Autoencoder(torch.nn.Module):
    """transformers' Chameleon VQ encoder + quant_conv, and the Orthus decoder (post_quant_conv + decoder)."""

    def __init__(self, vqmodel):
        super().__init__()
        self.encoder = vqmodel.encoder
        self.quant_conv = vqmodel.quant_conv
        self.decoder = VQDecoder(VQ)

    def encode(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, z):
        return self.decoder.decode_grid(z)


def train_autoencoder(args, ae: Autoencoder, device) -> float:
    """Reconstruction (MSE + L1) with noise on the latents, so the decoder tolerates a sampler's small errors;
    returns the latent standard deviation used to put latents on the x10 scale."""
    batches = loader(args, "ae", None)
    opt = torch.optim.AdamW(ae.parameters(), lr=args.ae_lr, weight_decay=0.0)
    ae.train()
    start = time.time()
    for step in range(args.ae_steps):
        x = pixels(next(batches)).to(device)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, args.ae_steps, args.ae_lr, 100)
        z = ae.encode(x)
        scale = z.detach().std()
        noisy = z + args.latent_noise * scale * torch.randn_like(z)
        y = ae.decode(noisy)
        loss = F.mse_loss(y, x) + 0.5 * F.l1_loss(y, x) + 1e-4 * (z**2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.ae_steps - 1:
            print(f"ae {step:5d} loss {loss.item():.5f} latent std {scale.item():.3f} {time.time() - start:.0f}s", flush=True)
    ae.eval()
    with torch.no_grad():
        return float(ae.encode(pixels(next(batches)).to(device)).std())


class Batch:
    """Token ids, where the image latents go, and which positions carry which loss."""

    def __init__(self, examples, tokenizer, rng: random.Random, dropout: float):
        def encode(text: str) -> list:
            return tokenizer.encode(text, add_special_tokens=False).ids

        rows = []  # (ids, targets, image_at, boi); targets[i] is the token position i must predict, or -100
        for example in examples:
            if example.kind == "vqa":
                ids = [ct.BOS, ct.BOI] + [ct.IMAGE] * PATCHES + [ct.EOI] + encode(example.prompt) + [ct.SEP]
                answer = encode(example.answer) + [ct.SEP]
                targets = [-100] * (len(ids) - 1) + answer
                ids += answer[:-1]
                image_at = 2
                boi = None
            else:
                null = world.NULL_PROMPT if example.kind == "t2i" else world.INTERLEAVED_NULL_PROMPT
                dropped = rng.random() < dropout
                prompt = null if dropped else example.prompt
                ids = [ct.BOS] + encode(prompt) + [ct.SEP]
                targets = [-100] * len(ids)
                if example.kind == "interleaved" and not dropped:
                    targets[-1] = ct.BOI
                boi = len(ids)
                ids += [ct.BOI] + [ct.IMAGE] * PATCHES
                targets += [-100] * (PATCHES + 1)
                image_at = boi + 1
                if example.kind == "interleaved" and not dropped:
                    text = encode(example.answer) + [ct.SEP]
                    ids += [ct.EOI] + text[:-1]
                    targets += text
                elif example.kind == "t2i":
                    ids, targets = ids[:-1], targets[:-1]  # the last latent is never fed back
            rows.append((ids, targets, image_at, boi))
        length = max(len(r[0]) for r in rows)
        self.ids = torch.full((len(rows), length), ct.PAD, dtype=torch.long)
        self.targets = torch.full((len(rows), length), -100, dtype=torch.long)
        # Per row: where the latents go, how many are fed (all 16, or 15 for text-to-image: the last latent is never
        # fed back) and the BOI position whose hidden state conditions patch 0 (None without a diffusion loss).
        self.image_at, self.fed, self.boi = [], [], []
        for b, (ids, targets, image_at, boi) in enumerate(rows):
            self.ids[b, : len(ids)] = torch.tensor(ids)
            self.targets[b, : len(targets)] = torch.tensor(targets)
            self.image_at.append(image_at)
            self.fed.append(ids[image_at : image_at + PATCHES].count(ct.IMAGE))
            self.boi.append(boi)


class Batches(torch.utils.data.IterableDataset):
    """Batch k is drawn from its own seeded generator, so the stream is the same with any number of loader workers."""

    def __init__(self, seed: int, stage: str, size: int, tokenizer_text, dropout: float):
        self.seed, self.stage, self.size, self.tokenizer_text, self.dropout = seed, stage, size, tokenizer_text, dropout

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        held_positions, held_pairs = world.held_out()
        tokenizer = Tokenizer.from_str(self.tokenizer_text) if self.tokenizer_text else None
        index = worker
        while True:
            rng = random.Random(f"{self.seed}-{self.stage}-{index}")
            if self.stage == "ae":
                scenes = [world.random_scene(rng, held_positions, held_pairs)[0] for _ in range(self.size)]
                yield np.stack([world.render(objects) for objects in scenes])
            else:
                examples = [world.training_example(rng, held_positions, held_pairs) for _ in range(self.size)]
                yield Batch(examples, tokenizer, rng, self.dropout), np.stack([e.image for e in examples])
            index += workers


def loader(args, stage: str, tokenizer_text):
    dataset = Batches(args.seed, stage, args.batch, tokenizer_text, args.caption_dropout)
    return iter(
        torch.utils.data.DataLoader(
            dataset, batch_size=None, num_workers=args.loader_workers, collate_fn=lambda b: b, prefetch_factor=4 if args.loader_workers else None
        )
    )


class Joint(torch.nn.Module):
    def __init__(self, hf, codebook: torch.Tensor):
        super().__init__()
        self.hf = hf
        self.codebook_in = torch.nn.Parameter(codebook.clone())
        self.head = DiffusionHead(LATENT, HEAD_WIDTH, DIMS["hidden_size"], HEAD_BLOCKS)
        # The AR loss is over the ids text can take (specials and BPE tokens, not the image codes, which the engine
        # masks); `text_index` maps a vocabulary id to its place among them.
        text_rows = torch.tensor(list(range(0, 4)) + list(range(ct.EOI, VOCAB_SIZE)))
        text_index = torch.full((VOCAB_SIZE,), -1, dtype=torch.long)
        text_index[text_rows] = torch.arange(len(text_rows))
        self.register_buffer("text_rows", text_rows, persistent=False)
        self.register_buffer("text_index", text_index, persistent=False)

    def forward(self, batch: Batch, latents: torch.Tensor, alphas: torch.Tensor, diffusion_mul: int):
        device = latents.device
        ids = batch.ids.to(device)
        embeds = self.hf.model.embed_tokens(ids)
        table = self.hf.model.embed_tokens.weight
        soft = soft_embed(latents.reshape(-1, LATENT), self.codebook_in, table).reshape(latents.shape[0], PATCHES, -1)
        rows = []
        for b, (start, count) in enumerate(zip(batch.image_at, batch.fed)):
            rows.append(torch.cat([embeds[b, :start], soft[b, :count], embeds[b, start + count :]]))
        hidden = self.hf.model(inputs_embeds=torch.stack(rows)).last_hidden_state

        targets = batch.targets.to(device)
        mask = targets != -100
        ar = torch.zeros((), device=device)
        if mask.any():
            logits = hidden[mask] @ self.hf.lm_head.weight[self.text_rows].T
            ar = F.cross_entropy(logits, self.text_index[targets[mask]])

        conds, x0 = [], []
        for b, boi in enumerate(batch.boi):
            if boi is not None:
                conds.append(hidden[b, boi : boi + PATCHES])
                x0.append(latents[b] * 0.1)
        diffusion = torch.zeros((), device=device)
        if conds:
            z = torch.cat(conds).repeat(diffusion_mul, 1)
            x0 = torch.cat(x0).repeat(diffusion_mul, 1)
            t = torch.randint(0, 1000, (z.shape[0],), device=device)
            a = alphas[t][:, None]
            noise = torch.randn_like(x0)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            v = a.sqrt() * noise - (1 - a).sqrt() * x0
            diffusion = F.mse_loss(self.head(xt, t, z), v)
        return ar, diffusion


def zero_snr_alphas() -> torch.Tensor:
    """alpha-bar of Orthus's training schedule: scaled-linear betas rescaled to zero terminal SNR (docs/model.md §3.3;
    the same as diffusers' DDPMScheduler with rescale_betas_zero_snr, checked in ops/train/check_schedule.py)."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    root = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    alphas_bar = root**2
    alphas = torch.cat([alphas_bar[0:1], alphas_bar[1:] / alphas_bar[:-1]])
    return torch.cumprod(alphas, dim=0)


def ema_update(ema: dict, model: torch.nn.Module, decay: float):
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.dtype.is_floating_point:
                ema[name].mul_(decay).add_(p, alpha=1 - decay)


def train_joint(args, joint: Joint, ae: Autoencoder, scale: float, tokenizer_text: str, device):
    batches = loader(args, "joint", tokenizer_text)
    alphas = zero_snr_alphas().to(device)
    params = [p for n, p in joint.named_parameters() if not n.startswith("hf.model.vqmodel.")]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    ema = {k: v.detach().clone() for k, v in joint.state_dict().items()}
    joint.train()
    start = time.time()
    for step in range(args.steps):
        batch, images = next(batches)
        with torch.no_grad():
            z = ae.encode(pixels(images).to(device))
            latents = (z * (LATENT_SCALE / scale)).permute(0, 2, 3, 1).reshape(len(images), PATCHES, LATENT)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, args.steps, args.lr, 200)
        ar, diffusion = joint(batch, latents, alphas, args.diffusion_mul)
        loss = ar + diffusion
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_update(ema, joint, args.ema if step > 500 else 0.0)
        if step % 100 == 0 or step == args.steps - 1:
            print(f"joint {step:5d} ar {ar.item():.4f} diffusion {diffusion.item():.4f} {time.time() - start:.0f}s", flush=True)
    return ema


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for the trained state (read by export.py)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--ae-steps", type=int, default=1800)
    parser.add_argument("--reuse-autoencoder", action="store_true", help="load work/autoencoder.pt if it is there")
    parser.add_argument("--ae-lr", type=float, default=2e-3)
    parser.add_argument("--latent-noise", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--diffusion-mul", type=int, default=4)
    parser.add_argument("--loader-workers", type=int, default=1, help="processes drawing and rendering batches")
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device(args.device)
    args.work.mkdir(parents=True, exist_ok=True)

    tokenizer_json = ct.build_tokenizer_json(world.tokenizer_corpus(), VOCAB_SIZE)
    tokenizer_text = json.dumps(tokenizer_json, ensure_ascii=False)
    (args.work / "tokenizer.json").write_text(tokenizer_text + "\n")
    config = model_config(tokenizer_json["model"]["vocab"])
    (args.work / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    hf = hf_model(config).to(device)
    ae = Autoencoder(hf.model.vqmodel).to(device)
    began = time.time()
    saved = args.work / "autoencoder.pt"
    if args.reuse_autoencoder and saved.exists():
        state = torch.load(saved, weights_only=False)
        ae.load_state_dict(state["autoencoder"])
        scale = state["latent_std"]
    else:
        scale = train_autoencoder(args, ae, device)
        torch.save({"autoencoder": ae.state_dict(), "latent_std": scale}, saved)
    ae.eval()
    for p in ae.parameters():
        p.requires_grad_(False)
    print(f"autoencoder: {time.time() - began:.0f}s, latent std {scale:.4f}", flush=True)

    # codebook_in starts small: the soft embedding's weights are softmax(2 v.C_k - |C_k|^2) (the |v|^2 term cancels),
    # so small rows keep the softmax smooth in v and trainable, where rows near the latents (a k-means codebook)
    # make it a hard nearest-code lookup that passes only the code's index on.
    codebook = 0.02 * torch.randn(CODES, LATENT, generator=torch.Generator().manual_seed(args.seed))
    joint = Joint(hf, codebook).to(device)
    ema = train_joint(args, joint, ae, scale, tokenizer_text, device)
    torch.save(
        {"ema": {k: v.cpu() for k, v in ema.items()}, "decoder": {k: v.cpu() for k, v in ae.decoder.state_dict().items()},
         "latent_std": scale, "args": vars(args) | {"work": str(args.work)}},
        args.work / "trained.pt",
    )
    print(f"trained in {time.time() - began:.0f}s; wrote {args.work / 'trained.pt'}", flush=True)


if __name__ == "__main__":
    main()
