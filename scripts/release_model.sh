#!/usr/bin/env bash
# Rebuild the bundled default model and its model card from ../shared/data, end to end.
# Every figure in covidxray/weights/MODEL_CARD.md comes from the reports this script writes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
MODEL=${MODEL:-xray-cnn}
EPOCHS=${EPOCHS:-20}
SEED_EPOCHS=${SEED_EPOCHS:-4}
HOLDOUT=covid19-radiography-database
C=.venv/bin/covidxray
$C data prepare "$DATA" --out prepared --holdout "$HOLDOUT" --seed 0
$C train --model "$MODEL" --task binary --split prepared/split.csv --out runs/release-internal --epochs "$EPOCHS" --patience 8 --seed 0 --workers 2
$C train --model "$MODEL" --task binary --split prepared/split-loso.csv --out runs/release-loso --epochs "$EPOCHS" --patience 8 --seed 0 --workers 2
$C train --model seed-cnn --task binary --split prepared/split.csv --out runs/seed-internal --epochs "$SEED_EPOCHS" --seed 0 --workers 2
$C train --model seed-cnn --task binary --split prepared/split-loso.csv --out runs/seed-loso --epochs "$SEED_EPOCHS" --seed 0 --workers 2
$C export --slim --model runs/release-internal/best.pt --out covidxray/weights/covidxray-default.pt
$C export --onnx --lungs  # the fast path's ONNX files and sidecars for the new weights (docs/predict.md)
$C evaluate covidxray/weights/covidxray-default.pt --split prepared/split.csv --part test --out reports/release-internal
$C evaluate runs/release-loso/best.pt --split prepared/split-loso.csv --part test --part external --out reports/release-loso
$C evaluate runs/seed-internal/best.pt --split prepared/split.csv --part test --out reports/seed-internal
$C evaluate runs/seed-loso/best.pt --split prepared/split-loso.csv --part test --part external --out reports/seed-loso
$C compare reports/release-internal reports/release-loso reports/seed-internal reports/seed-loso --out reports/comparison.md
$C model-card --internal reports/release-internal --external reports/release-loso \
  --baseline reports/seed-internal --baseline reports/seed-loso --script scripts/release_model.sh \
  --out covidxray/weights/MODEL_CARD.md
for report in release-internal release-loso seed-internal seed-loso; do  # the summaries the docs link to
  mkdir -p "docs/reports/$report"
  cp "reports/$report/summary.md" "reports/$report/metrics.json" "docs/reports/$report/"
done
cp reports/comparison.md docs/reports/comparison.md
