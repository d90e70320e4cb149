#!/usr/bin/env python3
"""Checks train.py's zero-SNR schedule against diffusers' DDPMScheduler built as Orthus trains."""

from diffusers import DDPMScheduler

from train import zero_snr_alphas

reference = DDPMScheduler(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
).alphas_cumprod
ours = zero_snr_alphas()
worst = float((ours - reference).abs().max())
print(f"largest difference in alpha-bar: {worst:.3e}; alpha-bar[999] = {float(ours[999])}")
assert worst < 1e-6 and float(ours[999]) == 0.0
