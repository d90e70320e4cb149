"""PyTorch reference for the Orthus parts, written from docs/model.md §2-4.

These modules use torch's own Linear, LayerNorm, Conv2d, GroupNorm and interpolate as the oracles for the primitives,
and diffusers' DDIMScheduler (built with Orthus's arguments) for the sampler, so the Swift engine is checked against
independent implementations of every operation.
"""

import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


def load_state(model_dir: Path) -> dict:
    """Every tensor of a (possibly sharded) checkpoint, as float32."""
    index = model_dir / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    state = {}
    for name in files:
        state.update({k: v.float() for k, v in load_file(str(model_dir / name)).items()})
    return state


def orthus_scheduler(steps: int) -> "DDIMScheduler":  # noqa: F821
    """The sample scheduler exactly as OrthusForConditionalGeneration builds it."""
    from diffusers import DDIMScheduler  # here, so the modules above import without diffusers (training)

    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        num_train_timesteps=1000,
        clip_sample=False,
        prediction_type="v_prediction",
        set_alpha_to_one=True,
        steps_offset=1,
        trained_betas=None,
        timestep_spacing="trailing",
        rescale_betas_zero_snr=True,
    )
    scheduler.set_timesteps(steps)
    return scheduler


# ---------------------------------------------------------------------------------------------------------------------
# Diffusion head: MAR SimpleMLPAdaLN (docs/model.md §3.2)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


def timestep_frequencies(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first, then sin


class ResBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.in_ln = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))

    def forward(self, x, y):
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(modulate(self.in_ln(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, width, out):
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, y):
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class TimeEmbed(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))


class DiffusionHead(nn.Module):
    def __init__(self, latent, width, z_channels, blocks):
        super().__init__()
        self.time_embed = TimeEmbed(width)
        self.cond_embed = nn.Linear(z_channels, width)
        self.input_proj = nn.Linear(latent, width)
        self.res_blocks = nn.ModuleList([ResBlock(width) for _ in range(blocks)])
        self.final_layer = FinalLayer(width, latent)

    @staticmethod
    def from_state(state: dict) -> "DiffusionHead":
        width, latent = state["mlp_head.input_proj.weight"].shape
        z_channels = state["mlp_head.cond_embed.weight"].shape[1]
        blocks = len({k.split(".")[2] for k in state if k.startswith("mlp_head.res_blocks.")})
        head = DiffusionHead(latent, width, z_channels, blocks)
        head.load_state_dict({k[len("mlp_head."):]: v for k, v in state.items() if k.startswith("mlp_head.")})
        return head.eval()

    def forward(self, x, t, z):
        y = self.time_embed.mlp(timestep_frequencies(t)) + self.cond_embed(z)
        h = self.input_proj(x)
        for block in self.res_blocks:
            h = block(h, y)
        return self.final_layer(h, y)


def sample_patch(head, scheduler, noise, z_cond, z_uncond, cfg: float) -> torch.Tensor:
    """One patch as ORT's continuous branch samples it: shared x for both rows, CFG on v, diffusers step, / 0.1."""
    x = noise.reshape(1, -1) * scheduler.init_noise_sigma
    z = torch.stack([z_cond, z_uncond])
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(x, t)
        v = head(x.repeat(2, 1), torch.as_tensor([t]).repeat(2), z)
        v = v[1:2] + cfg * (v[0:1] - v[1:2])
        x = scheduler.step(v, t, x).prev_sample
    return (x / 0.1)[0]


# ---------------------------------------------------------------------------------------------------------------------
# Soft vision embedding (docs/model.md §3.1)


def soft_embed(latents: torch.Tensor, codebook: torch.Tensor, embed_tokens: torch.Tensor) -> torch.Tensor:
    d = (latents**2).sum(1, keepdim=True) + (codebook**2).sum(1) - 2 * latents @ codebook.T
    return F.softmax(-d, dim=-1) @ embed_tokens[4 : 4 + codebook.shape[0]]


# ---------------------------------------------------------------------------------------------------------------------
# VQ-VAE decoder (docs/model.md §2.2), the Chameleon VQGAN layout


def group_norm(channels):
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = group_norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        w = F.softmax(torch.bmm(q, k.reshape(b, c, hh * ww)) * c**-0.5, dim=2)
        out = torch.bmm(v.reshape(b, c, hh * ww), w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpLevel(nn.Module):
    pass


class VQDecoder(nn.Module):
    """post_quant_conv + decoder: latents [n, latent] in raster order -> pixels [1, 3, R, R]."""

    def __init__(self, vq: dict):
        super().__init__()
        mult = vq["channel_multiplier"]
        block_in = vq["base_channels"] * mult[-1]
        self.post_quant_conv = nn.Conv2d(vq["embed_dim"], vq["latent_channels"], 1)
        self.conv_in = nn.Conv2d(vq["latent_channels"], block_in, 3, padding=1)
        self.mid = Mid(block_in)
        self.up = nn.ModuleList()
        for level in reversed(range(len(mult))):
            up = UpLevel()
            block_out = vq["base_channels"] * mult[level]
            blocks = []
            for _ in range(vq["num_res_blocks"] + 1):
                blocks.append(ResnetBlock(block_in, block_out))
                block_in = block_out
            up.block = nn.ModuleList(blocks)
            if level != 0:
                up.upsample = Upsample(block_in)
            self.up.insert(0, up)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, vq["out_channels"], 3, padding=1)
        self.grid = vq["resolution"] >> (len(mult) - 1)

    def load(self, state: dict) -> "VQDecoder":
        own = {}
        for k, v in state.items():
            if k.startswith("model.vqmodel.decoder."):
                own[k[len("model.vqmodel.decoder."):]] = v
            elif k.startswith("model.vqmodel.post_quant_conv."):
                own[k[len("model.vqmodel."):]] = v
        self.load_state_dict(own)
        return self.eval()

    def forward(self, latents):
        return self.decode_grid(latents.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2))

    def decode_grid(self, x):
        """Latents [B, embed_dim, grid, grid] -> pixels [B, 3, R, R]."""
        x = self.conv_in(self.post_quant_conv(x))
        x = self.mid.block_2(self.mid.attn_1(self.mid.block_1(x)))
        for level in reversed(range(len(self.up))):
            for block in self.up[level].block:
                x = block(x)
            if level != 0:
                x = self.up[level].upsample(x)
        return self.conv_out(F.silu(self.norm_out(x)))


def postprocess(pixels: torch.Tensor) -> torch.Tensor:
    """[1, 3, R, R] model output -> uint8 [R, R, 3], exactly as the reference: (x+1)/0.0078, clip, truncate."""
    x = ((pixels[0] * 1.0 + 1.0) * (1 / 0.0078)).clamp(0, 255)
    return x.to(torch.uint8).permute(1, 2, 0)


# ---------------------------------------------------------------------------------------------------------------------
# Image preprocessing (docs/model.md §3.7), with PIL as the oracle for the Lanczos resize


def preprocess(path, resolution: int) -> torch.Tensor:
    """RGBA blended on white, shortest edge resized with PIL LANCZOS, centre crop, x * 0.0078 - 1; [3, R, R]."""
    import numpy as np
    from PIL import Image

    image = Image.open(path)
    rgba = np.array(image.convert("RGBA"))
    if (rgba[:, :, 3] < 255).any():
        alpha = rgba[:, :, 3:4] / 255.0
        image = Image.fromarray(((1 - alpha) * 255 + alpha * rgba[:, :, :3]).astype(np.uint8), "RGB")
    else:
        image = image.convert("RGB")
    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_long = int(resolution * long / short)
    image = image.resize((resolution, new_long) if w <= h else (new_long, resolution), Image.LANCZOS)
    w, h = image.size
    top, left = int((h - resolution) / 2.0), int((w - resolution) / 2.0)
    pixels = np.array(image.crop((left, top, left + resolution, top + resolution))).astype(np.float64) * 0.0078 - 1.0
    return torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------------------------------
# The generation loops (docs/model.md §4.1-4.3), on transformers' Chameleon backbone with a KV cache


class ReferenceOrthus:
    """transformers' ChameleonModel as the backbone, with the reference head, soft embedding and VQ-VAE."""

    def __init__(self, hf_model, state: dict, vq: dict, encoder):
        from transformers import DynamicCache

        self.model = hf_model
        self.head = DiffusionHead.from_state(state)
        self.decoder = VQDecoder(vq).load(state)
        self.encoder = encoder
        self.codebook = state["model.codebook_in.weight"]
        self.embed_weight = state["model.embed_tokens.weight"]
        self.patches = self.decoder.grid**2
        self.new_cache = DynamicCache

    def embed(self, items) -> torch.Tensor:
        """items: token ids (int) or latents (1-D tensors) -> [1, n, hidden]."""
        rows = []
        for item in items:
            if isinstance(item, int):
                rows.append(self.embed_weight[item])
            else:
                rows.append(soft_embed(item.reshape(1, -1), self.codebook, self.embed_weight)[0])
        return torch.stack(rows).unsqueeze(0)

    def feed(self, cache, items) -> torch.Tensor:
        """Feeds items to the sequence whose cache is `cache`; returns the final-normed hidden state of the last."""
        out = self.model.model(inputs_embeds=self.embed(items), past_key_values=cache, use_cache=True)
        return out.last_hidden_state[0, -1]

    def logits(self, hidden):
        return self.model.lm_head(hidden)

    def sample_image(self, cond_cache, uncond_cache, z_c, z_u, noise, cfg, steps, feed_last):
        scheduler = orthus_scheduler(steps)
        latents = []
        for i in range(self.patches):
            latent = sample_patch(self.head, scheduler, noise[i], z_c, z_u, cfg)
            latents.append(latent)
            if i < self.patches - 1:
                z_c = self.feed(cond_cache, [latent])
                z_u = self.feed(uncond_cache, [latent])
            elif feed_last:
                self.feed(cond_cache, [latent])
        return torch.stack(latents)

    def text_to_image(self, cond_ids, uncond_ids, noise, cfg=5.0, steps=100):
        cond, uncond = self.new_cache(), self.new_cache()
        z_c = self.feed(cond, cond_ids + [8197])
        z_u = self.feed(uncond, uncond_ids + [8197])
        return self.sample_image(cond, uncond, z_c, z_u, noise, cfg, steps, feed_last=False)

    @staticmethod
    def text_only(logits, vocab_known: int):
        logits = logits.clone()
        logits[4:8196] = -float("inf")
        logits[8196:8198] = -float("inf")
        logits[vocab_known:] = -float("inf")
        return logits

    def image_to_text(self, pixels, question_ids, max_tokens, vocab_known):
        latents = self.encoder.quant_conv(self.encoder.encoder(pixels.unsqueeze(0)))[0]
        latents = latents.permute(1, 2, 0).reshape(-1, latents.shape[0])
        cache = self.new_cache()
        hidden = self.feed(cache, [0, 8197] + list(latents) + [8196] + question_ids + [8710])
        tokens = []
        while len(tokens) < max_tokens:
            token = int(torch.argmax(self.text_only(self.logits(hidden), vocab_known)))
            tokens.append(token)
            if token in (8710, 2):
                break
            hidden = self.feed(cache, [token])
        return tokens

    def interleaved_greedy(self, ids, null_ids, noise, max_tokens, vocab_known, cfg=3.0, steps=100):
        """Greedy text; images as in 4.3. Returns (tokens with BOI/EOI, [latents per image])."""
        cache = self.new_cache()
        hidden = self.feed(cache, ids)
        out, images, generated = [], [], 0
        while generated < max_tokens:
            logits = self.text_only(self.logits(hidden), vocab_known)
            if generated + self.patches + 2 <= max_tokens:
                logits[8197] = self.logits(hidden)[8197]  # BOI allowed while an image still fits
            token = int(torch.argmax(logits))
            generated += 1
            out.append(token)
            if token in (8710, 2):
                break
            if token != 8197:
                hidden = self.feed(cache, [token])
                continue
            uncond = self.new_cache()
            z_c = self.feed(cache, [8197])
            z_u = self.feed(uncond, null_ids + [8197])
            images.append(self.sample_image(cache, uncond, z_c, z_u, noise[len(images)], cfg, steps, feed_last=True))
            generated += self.patches + 1
            out.append(8196)
            hidden = self.feed(cache, [8196])
        return out, images
