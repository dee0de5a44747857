#!/usr/bin/env bash
# The main job, on a sensible default, on a fresh machine: export a Tiny YOLOv2 (VOC cfg) with
# the project's own exporter and run the edge detector on darknet's sample photos.
# There are no pretrained weights on this machine, so the weights are random (seeded): the
# pipeline is real end to end, the boxes are not meaningful until a model is trained.
# Output: JSON lines on stdout, annotated images in out/demo/.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SKIP_PY39="${SKIP_PY39:-1}" bash "$REPO/scripts/setup.sh"
cd "$REPO"
OUT="${OUT:-out/demo}"
CFG=/usr/share/darknet/cfg/yolov2-tiny-voc.cfg
mkdir -p "$OUT"
.venv/bin/model-tools random-weights "$CFG" "$OUT/yolov2-tiny-voc.weights" --seed 1
.venv/bin/model-tools export --cfg "$CFG" --weights "$OUT/yolov2-tiny-voc.weights" \
  --names /usr/share/darknet/data/voc.names -o "$OUT/model"
.venv/bin/edge-app detect --model "$OUT/model" --conf 0.1 --draw "$OUT" \
  /usr/share/darknet/data/dog.jpg /usr/share/darknet/data/person.jpg
echo "annotated images: $OUT/dog.jpg $OUT/person.jpg" >&2
