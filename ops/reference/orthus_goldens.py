"""Goldens for the Orthus parts (schedule, diffusion head and DDIM sampling, soft embedding, VQ encoder and decoder).

Run by make_fixtures.py after the tiny checkpoint exists; reads its tensors back from the safetensors files.
"""

from pathlib import Path

import numpy as np
import torch
from transformers.models.chameleon.configuration_chameleon import ChameleonVQVAEConfig
from transformers.models.chameleon.modeling_chameleon import ChameleonVQVAE

from orthus_reference import DiffusionHead, VQDecoder, load_state, orthus_scheduler, postprocess, sample_patch, soft_embed


def save(goldens: Path, name: str, value: torch.Tensor):
    np.save(goldens / f"{name}.npy", np.ascontiguousarray(value.detach().numpy(), dtype=np.float32))


def write_orthus_goldens(model_dir: Path, goldens: Path, vq: dict, seed: int = 21):
    g = torch.Generator().manual_seed(seed)
    state = load_state(model_dir)
    hidden = state["model.embed_tokens.weight"].shape[1]
    latent = vq["embed_dim"]

    with torch.no_grad():
        # The schedule: diffusers' DDIMScheduler with Orthus's arguments.
        scheduler = orthus_scheduler(100)
        save(goldens, "ddim-alphas-cumprod", scheduler.alphas_cumprod)
        save(goldens, "ddim-timesteps-100", scheduler.timesteps.float())
        save(goldens, "ddim-timesteps-30", orthus_scheduler(30).timesteps.float())

        # The head on single rows at a few timesteps.
        head = DiffusionHead.from_state(state)
        x = torch.randn(4, latent, generator=g)
        t = torch.tensor([999.0, 500.0, 9.0, 0.0])
        z = torch.randn(4, hidden, generator=g)
        save(goldens, "head-x", x)
        save(goldens, "head-t", t)
        save(goldens, "head-z", z)
        save(goldens, "head-v", head(x, t, z))

        # Full CFG sampling of patches with given noise: 100 steps at cfg 5 (T2I) and 30 steps at cfg 3.
        noise = torch.randn(3, latent, generator=g)
        z_cond = torch.randn(3, hidden, generator=g)
        z_uncond = torch.randn(3, hidden, generator=g)
        save(goldens, "sample-noise", noise)
        save(goldens, "sample-z-cond", z_cond)
        save(goldens, "sample-z-uncond", z_uncond)
        for steps, cfg in ((100, 5.0), (30, 3.0)):
            scheduler = orthus_scheduler(steps)
            latents = torch.stack([sample_patch(head, scheduler, noise[i], z_cond[i], z_uncond[i], cfg) for i in range(3)])
            save(goldens, f"sample-latents-{steps}steps-cfg{int(cfg)}", latents)

        # Soft embedding: latents near codebook entries (peaked softmax) and far from them (flat).
        codebook = state["model.codebook_in.weight"]
        near = codebook[torch.tensor([3, 1000, 8191])] + 0.3 * torch.randn(3, latent, generator=g)
        far = 2.0 * torch.randn(2, latent, generator=g)
        soft_latents = torch.cat([near, far])
        save(goldens, "soft-latents", soft_latents)
        save(goldens, "soft-embeddings", soft_embed(soft_latents, codebook, state["model.embed_tokens.weight"]))

        # VQ decoder: post_quant_conv + decoder, then the reference postprocessing.
        grid = vq["resolution"] >> (len(vq["channel_multiplier"]) - 1)
        decoder = VQDecoder(vq).load(state)
        decode_latents = 3.0 * torch.randn(grid * grid, latent, generator=g)
        pixels = decoder(decode_latents)
        save(goldens, "vq-decode-latents", decode_latents)
        save(goldens, "vq-decode-pixels", pixels[0])
        save(goldens, "vq-decode-rgb8", postprocess(pixels).float())

        # VQ encoder + quant_conv: transformers' own ChameleonVQVAE modules; latents in raster order [n, latent].
        encoder = ChameleonVQVAE(ChameleonVQVAEConfig(**vq)).eval()
        own = {k[len("model.vqmodel."):]: v for k, v in state.items() if k.startswith("model.vqmodel.")}
        missing, _ = encoder.load_state_dict(own, strict=False)
        assert not [m for m in missing if m.startswith(("encoder.", "quant_conv."))], missing
        image = torch.rand(1, 3, vq["resolution"], vq["resolution"], generator=g) * 2 - 1
        encoded = encoder.quant_conv(encoder.encoder(image))
        save(goldens, "vq-encode-pixels", image[0])
        save(goldens, "vq-encode-latents", encoded[0].permute(1, 2, 0).reshape(-1, latent))


def write_test_images(images: Path, goldens: Path, resolution: int, seed: int = 5):
    """Small PNGs of every kind the decoder meets, and their preprocessed pixels computed with PIL."""
    from PIL import Image

    from orthus_reference import preprocess

    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def smooth(h, w, channels):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 / max(w - 1, 1)), (y * 255 / max(h - 1, 1)), ((x + y) * 127 / max(w + h - 2, 1))], -1)
        return np.clip(base[:, :, :channels] + rng.normal(0, 25, (h, w, channels)), 0, 255).astype(np.uint8)

    made = {
        "landscape-37x23": Image.fromarray(smooth(23, 37, 3), "RGB"),
        "downscale-64x48": Image.fromarray(smooth(48, 64, 3), "RGB"),
        "gray-16x16": Image.fromarray(smooth(16, 16, 1)[:, :, 0], "L"),
        "palette-30x30": Image.fromarray(smooth(30, 30, 3), "RGB").quantize(colors=16),
    }
    rgba = np.concatenate([smooth(41, 20, 3), np.linspace(0, 255, 41 * 20).reshape(41, 20, 1).astype(np.uint8)], -1)
    made["portrait-alpha-20x41"] = Image.fromarray(rgba, "RGBA")
    for name, image in made.items():
        path = images / f"{name}.png"
        image.save(path)
        save(goldens, f"preprocess-{name}", preprocess(path, resolution))


def write_generation_goldens(hf_model, model_dir: Path, goldens: Path, images: Path, vq: dict, tokenizer, seed: int = 33):
    """End-to-end runs of the reference loops with injected noise (greedy text), for the engine to reproduce."""
    import json

    from orthus_reference import ReferenceOrthus, preprocess

    state = load_state(model_dir)
    encoder = ChameleonVQVAE(ChameleonVQVAEConfig(**vq)).eval()
    encoder.load_state_dict({k[len("model.vqmodel."):]: v for k, v in state.items() if k.startswith("model.vqmodel.")}, strict=False)
    ref = ReferenceOrthus(hf_model, state, vq, encoder)
    g = torch.Generator().manual_seed(seed)
    latent = vq["embed_dim"]
    vocab_known = tokenizer.get_vocab_size()

    def bpe(text):
        return tokenizer.encode(text, add_special_tokens=False).ids

    record = {}
    with torch.no_grad():
        prompt = "A red circle on the left of a blue square."
        noise = torch.randn(1, ref.patches, latent, generator=g)
        latents = ref.text_to_image([0] + bpe(prompt) + [8710], [0] + bpe("Generate an image.") + [8710], noise[0])
        save(goldens, "t2i-noise", noise)
        save(goldens, "t2i-latents", latents.unsqueeze(0))
        save(goldens, "t2i-rgb8", postprocess(ref.decoder(latents)).float())
        record["t2i"] = {"prompt": prompt, "guidance": 5.0, "steps": 100}

        question = "What is in the picture?"
        pixels = preprocess(images / "landscape-37x23.png", vq["resolution"])
        tokens = ref.image_to_text(pixels, bpe(question), 20, vocab_known)
        record["i2t"] = {"image": "landscape-37x23.png", "question": question, "max_tokens": 20, "tokens": tokens}

        # A prompt whose greedy continuation opens an image, so the run covers text, an image and text again.
        noise = torch.randn(3, ref.patches, latent, generator=g)
        max_tokens = 3 * (ref.patches + 2) + 24
        for index in range(200):
            prompt = f"Draw picture number {index} and tell me about it."
            out, images_out = ref.interleaved_greedy([0] + bpe(prompt) + [8710], [0] + bpe("generate images") + [8710], noise, max_tokens, vocab_known)
            if images_out:
                break
        assert images_out, "no prompt opened an image"
        runs, run, inside = [], [], False
        for token in out:
            if token == 8197:
                if run:
                    runs.append(run)
                run, inside = [], True
            elif token == 8196:
                inside = False
            elif token not in (8710, 2):
                run.append(token)
        if run:
            runs.append(run)
        save(goldens, "interleaved-noise", noise)
        save(goldens, "interleaved-latents", torch.stack(images_out))
        record["interleaved"] = {"prompt": prompt, "max_tokens": max_tokens, "guidance": 3.0, "steps": 100, "tokens": out, "text_runs": runs}
    (goldens / "generation.json").write_text(json.dumps(record, indent=1) + "\n")
