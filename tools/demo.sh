#!/bin/sh
# make demo: the main job end to end with the embedded model (models/shapes-blip):
# a few Shapes World scenes, each described with every word explained
# (gradcam + attention + relevancy), an entailment decision explained, and an
# evaluation of the set. Pictures and report.html go to $DEMO_OUT (default
# build/demo). Needs a trained models/shapes-blip (vlens train --out models/shapes-blip)
# or VLENS_MODELS / -m via $DEMO_MODEL.
set -eu
cd "$(dirname "$0")/.."
VLENS=${VLENS:-build/vlens}
OUT=${DEMO_OUT:-build/demo}
N=${DEMO_SCENES:-3}
if [ -n "${DEMO_MODEL:-}" ]; then
  MODEL="-m $DEMO_MODEL"
elif [ -f models/shapes-blip/config.json ] || [ -n "${VLENS_MODELS:-}" ]; then
  MODEL=""
else
  echo "demo: models/shapes-blip is missing: train it first" >&2
  echo "      (vlens train --out models/shapes-blip), or run with DEMO_MODEL=DIR" >&2
  exit 1
fi
[ -x "$VLENS" ] || { echo "demo: $VLENS is not built (make)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
"$VLENS" shapes --seed 2024 --n "$N" --out "$OUT/scenes" -q
i=1
while [ "$i" -le "$N" ]; do
  img=$(printf '%s/scenes/scene_%05d.png' "$OUT" "$i")
  dir=$(printf '%s/scene_%05d' "$OUT" "$i")
  echo "== $img"
  # shellcheck disable=SC2086
  "$VLENS" describe "$img" $MODEL --method gradcam,attention,relevancy -o "$dir" -q
  # the scene's first hypothesis from the manifest
  hyp=$(sed -n "${i}p" "$OUT/scenes/manifest.jsonl" |
        sed 's/.*"hypotheses":\[{"text":"\([^"]*\)".*/\1/')
  gold=$(sed -n "${i}p" "$OUT/scenes/manifest.jsonl" |
         sed 's/.*"hypotheses":\[{"text":"[^"]*","label":"\([a-z]*\)".*/\1/')
  echo "entail \"$hyp\" (gold: $gold):"
  # shellcheck disable=SC2086
  "$VLENS" entail "$img" "$hyp" $MODEL --method gradcam,attention -o "$dir/entail" -q
  i=$((i + 1))
done
echo "== eval on the $N scenes"
# shellcheck disable=SC2086
"$VLENS" eval "$OUT/scenes" $MODEL --methods gradcam,attention,relevancy -q
echo
echo "pictures: $OUT/scene_*/ (word_*.png overlays, figure_*.png, heads_*.png, caption.gif)"
echo "open:     $OUT/scene_00001/report.html"
