#!/usr/bin/env python3
"""Compares two float .npy arrays of the same shape, as the golden tests do.

    orthus logits --model DIR --ids 0,15,7 --out ours.npy
    python ops/reference/compare_npy.py ours.npy reference.npy

Prints the largest absolute difference, the same relative to the largest |reference|, and, for 2-D arrays, in how
many rows the argmax agrees. Needs only numpy.
"""

import sys

import numpy as np


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours, reference = np.load(sys.argv[1]), np.load(sys.argv[2])
    if ours.shape != reference.shape:
        sys.exit(f"shapes differ: {ours.shape} vs {reference.shape}")
    worst = float(np.abs(ours - reference).max())
    print(f"shape {ours.shape}: max |diff| = {worst:.3e}, relative to max |reference| = {worst / float(np.abs(reference).max()):.3e}")
    if ours.ndim == 2:
        agree = int((ours.argmax(1) == reference.argmax(1)).sum())
        print(f"argmax agrees in {agree} of {ours.shape[0]} rows")


if __name__ == "__main__":
    main()
