#!/usr/bin/env bash
# The main job on a fresh machine: the edge daemon running the demo model (trained by our own
# tools, demo/README.md) on a held-out clip of moving logos, printing detections and tracked-object
# events as they happen and a summary at the end; the best frame of every object, its box drawn,
# is saved in out/demo/snapshots/ to look at. Publishes to an MQTT broker on localhost:1883 when
# one answers.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SKIP_PY39="${SKIP_PY39:-1}" SKIP_PI_ROOT="${SKIP_PI_ROOT:-1}" bash "$REPO/scripts/setup.sh"
cd "$REPO"
OUT=out/demo
mkdir -p "$OUT"
if [ ! -f "$OUT/clip.avi" ] || [ ! -f "$OUT/clip.json" ]; then
  .venv/bin/model-tools synth-clip "$OUT/clip.avi" --frames 60 --seed 777 >/dev/null
fi
mqtt=()
if .venv/bin/python -c 'import socket; socket.create_connection(("localhost", 1883), timeout=1)' 2>/dev/null; then
  echo "MQTT broker on localhost:1883: publishing to edge-vision/demo/{available,detections,events,counts,stats}"
  echo "  and <label>/snapshot, with Home Assistant discovery under homeassistant/"
  echo "  (watch them with: .venv/bin/edge-app watch --events-only)"
else
  echo "no MQTT broker on localhost:1883: detections are shown here only"
  echo "  (start one, e.g. 'mosquitto -d', and run this again to see them published)"
  mqtt=(--set mqtt.enabled=false)
fi
echo "model: demo/model ($(.venv/bin/python -c 'import json,glob; print(json.load(open(glob.glob("demo/model/*.json")[0]))["model_id"])')), clip: $OUT/clip.avi"
rm -rf "$OUT/snapshots"
.venv/bin/edge-app run --config demo/edge-app.toml --source "$OUT/clip.avi" \
  --jsonl "$OUT/detections.jsonl" --events "$OUT/events.jsonl" --set snapshots.folder="$OUT/snapshots" \
  --print "${mqtt[@]}"
echo "snapshots (best frame of each object, box drawn): $(find "$OUT/snapshots" -name '*.jpg' | wc -l) in $OUT/snapshots/"
