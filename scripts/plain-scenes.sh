#!/usr/bin/env bash
# Recall and precision of a model on single shapes over plain backgrounds (scripts/plain-scenes.py
# writes the clips): ssddetect at its defaults through gst-launch, scored by ssd-clip, a line per
# set ("all", and "rectangle" where the set has other classes too).
#   bash scripts/plain-scenes.sh [MODEL] [FOLDER]   (defaults: the shipped model, out/plain-scenes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=${1:-models/ssd-default.safetensors}
dir=${2:-out/plain-scenes}
[ -f "$dir/rect_flat_mid/truth.json" ] || /usr/bin/python3 scripts/plain-scenes.py "$dir" >/dev/null
export GST_PLUGIN_PATH=$PWD/build/gst-plugin GST_REGISTRY_1_0=$PWD/build/plain-scenes-registry.bin
tag=$(basename "$model" .safetensors)
printf "%-20s %s\n" set "class       truth  found     TP     FP precision  recall"
for set in "$dir"/*/; do
  set=${set%/}
  name=$(basename "$set")
  gst-launch-1.0 -q multifilesrc location="$set/frames/%05d.png" caps="image/png,framerate=10/1" ! pngdec ! \
    videoconvert ! ssddetect model="$model" ! ssdexport location="$set/$tag.jsonl" ! fakesink
  classes='^all '
  case $name in shapes_*) classes='^(all|rectangle) ' ;; esac
  build/gst-plugin/ssd-clip score --truth "$set/truth.json" --detections "$set/$tag.jsonl" |
    grep -E "$classes" | while read -r line; do printf "%-20s %s\n" "$name" "$line"; done
done
