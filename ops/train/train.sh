#!/usr/bin/env bash
# Trains the bundled shapes model from scratch on this machine's CPUs and writes it, with its evaluation set:
#   cluster/models/orthus-shapes/   the model in the published Orthus layout
#   cluster/eval/shapes/            the held-out prompts, the questions and their pictures, the detector's check sheet
# Needs PyTorch and friends: pip install --index-url https://download.pytorch.org/whl/cpu -r ops/reference/requirements.txt
# Seeded: the same machine and library versions give the same model. $1 is the work folder (default train-work).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-train-work}
export PYTHONUNBUFFERED=1
start=$(date +%s)
python3 ops/train/check_schedule.py
python3 ops/train/train.py --work "$work" --threads "${THREADS:-2}" | tee "$work.log"
python3 ops/train/export.py --work "$work" --out cluster/models/orthus-shapes
python3 ops/train/make_eval_set.py --out cluster/eval/shapes --validation-out cluster/eval/shapes-validation
echo "trained and exported in $(( ($(date +%s) - start) / 60 )) minutes"
