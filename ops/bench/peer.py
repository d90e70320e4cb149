"""The PyTorch peer for `orthus bench`: the same generated checkpoint and workload in transformers' Chameleon plus the
reference diffusion head and DDIM loop from ops/reference/, on the same number of threads.

Prints one JSON object: decode tokens/s at batch 1 (greedy, KV cache) and text-to-image milliseconds per patch.
Needs torch (CPU build), transformers, diffusers and safetensors (ops/reference/requirements.txt).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))
from make_fixtures import hf_model  # noqa: E402
from orthus_reference import ReferenceOrthus, load_state  # noqa: E402
from transformers import ChameleonVQVAE, ChameleonVQVAEConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = json.loads((args.model / "config.json").read_text())
    state = load_state(args.model)
    model = hf_model(config)
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=False)
    vq = config["vq_config"]
    encoder = ChameleonVQVAE(ChameleonVQVAEConfig(**vq)).eval()
    encoder.load_state_dict(
        {k[len("model.vqmodel."):]: v for k, v in state.items() if k.startswith("model.vqmodel.")}, strict=False
    )
    reference = ReferenceOrthus(model, state, vq, encoder)

    prompt = torch.tensor([[0] + [4 + i for i in range(15)]])
    with torch.no_grad():
        model.generate(prompt, max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up
        start = time.perf_counter()
        model(prompt)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(prompt, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False)
        decode = time.perf_counter() - start - prefill

        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(reference.patches, vq["embed_dim"], generator=generator)
        start = time.perf_counter()
        reference.text_to_image([0, 5, 6, 7, 8710], [0, 9, 10, 8710], noise, cfg=5.0, steps=args.steps)
        image = time.perf_counter() - start

    print(json.dumps({
        "decode_tokens_per_second": args.tokens / decode,
        "text_to_image_ms_per_patch": image / reference.patches * 1000,
        "threads": args.threads,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
