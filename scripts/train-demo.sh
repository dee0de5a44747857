#!/usr/bin/env bash
# Reproduces demo/: trains the demo model with model-tools pipeline on this machine's CPU with
# the Debian darknet (about 45 minutes on 2 cores), measures it on the held-out test split, and
# copies the result into demo/. darknet's training is not bit-reproducible: expect figures close
# to demo/README.md's, not identical.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SKIP_PY39=1 bash "$REPO/scripts/setup.sh"
cd "$REPO"
WORK=out/demo-train
.venv/bin/model-tools pipeline "$WORK" --name demo --synth 3000 --synth-seed 10 \
  --test-key 6 --valid-key 5 --width 160 --height 128 --width-multiplier 0.25 \
  --batch 16 --subdivisions 1 --learning-rate 0.002 --burn-in 100 --max-batches 4800
best="$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["select"]["best"]["weights"])' "$WORK/pipeline.json")"
.venv/bin/model-tools evaluate "$WORK/dataset/demo.data" "$WORK/demo.cfg" --weights "$best" \
  --valid "$WORK/dataset/test.txt" --out "$WORK/test-eval"
rm -rf demo/model && mkdir -p demo/model
cp "$WORK"/model/demo.xml "$WORK"/model/demo.bin "$WORK"/model/demo.json "$WORK"/model/map.txt \
   "$WORK"/model/pr_curve.png demo/model/
cp "$WORK/demo.cfg" "$WORK/demo-train.cfg" "$WORK/dataset/demo.names" "$WORK/selection.txt" demo/
cp "$WORK/training/loss.png" demo/loss.png
cp "$best" demo/demo.weights
cp "$WORK"/test-eval/models/*/map.txt demo/test-map.txt
echo "demo/ updated; held-out test set:"
tail -n 1 demo/test-map.txt
