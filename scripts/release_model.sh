#!/usr/bin/env bash
# Rebuild the bundled default model and its model card from ../shared/data, end to end.
# Every figure in covidxray/weights/MODEL_CARD.md comes from the reports this script writes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
# the registered recipe chosen on the within-hospital yardstick (docs/training.md, "The within-hospital
# default"; `covidxray recipes default` prints it), and the seed study's baseline
RECIPE=${RECIPE:-default}
BASELINE=${BASELINE:-seed-cnn}
# optional: fewer epochs than the recipes' own, for a dry run (e.g. EPOCHS=1 SEED_EPOCHS=1)
EPOCHS=${EPOCHS:-}
SEED_EPOCHS=${SEED_EPOCHS:-}
# Checkpoints trained elsewhere, e.g. distilled on a GPU (docs/training.md, "Distillation"): given
# both, training is skipped and their calibration and threshold are refitted here on the original
# validation files (they were fitted on pack images, in bfloat16).
INTERNAL_RUN=${INTERNAL_RUN:-}
LOSO_RUN=${LOSO_RUN:-}
# held out entirely for the leave-SIIM-out figure: SIIM's two grades share one pipeline, so the
# held-out pool is a new hospital whose classes cannot be told apart by their source
HOLDOUT=siim-covid19-detection
C=.venv/bin/covidxray
# seeds of the internal model: each is trained, and the best on the within-hospital validation ships
SEEDS=${SEEDS:-0 1}
# EXTRAS=0 skips the two runs reported beside the default (SIIM alone, three classes) when CPU time is short;
# their reports then stay as the last release that made them wrote them
EXTRAS=${EXTRAS:-1}
# the bundled model this release replaces: its column in the generalisation benchmark
LAST_DEFAULT=${LAST_DEFAULT:-HEAD}
train() {  # out [options]: train unless the run exists (rerunning the script reuses finished runs)
  local out=$1; shift
  [ -f "$out/best.pt" ] || $C train --out "$out" --seed 0 --workers 2 "$@"
}
epochs=(); [ -z "$EPOCHS" ] || epochs=(--epochs "$EPOCHS")
seed_epochs=(); [ -z "$SEED_EPOCHS" ] || seed_epochs=(--epochs "$SEED_EPOCHS")
# without SIIM the only validation contrast left is the COVID-19 collection's handful: too noisy to stop on,
# so the leave-SIIM-out run never stops early (patience = its epochs)
loso_patience=${EPOCHS:-$($C recipes "$RECIPE" | sed -n 's/^epochs = //p')}
best_on_validation() {  # run...: the run whose best epoch has the highest within-hospital validation AUROC
  .venv/bin/python -c "import sys, pandas as p; print(max(sys.argv[1:], key=lambda r: p.read_csv(r + '/history.csv').val_within_auroc.max()))" "$@"
}
$C data prepare "$DATA" --out prepared --holdout "$HOLDOUT" --seed 0
if [ -n "$INTERNAL_RUN" ] && [ -n "$LOSO_RUN" ]; then
  $C calibrate "$INTERNAL_RUN" --split prepared/split.csv --out runs/release/internal.pt
  $C calibrate "$LOSO_RUN" --split prepared/split-loso.csv --out runs/release/loso.pt
else
  internal_runs=()
  for seed in $SEEDS; do  # --seed given last wins over train()'s seed 0
    train "runs/release-internal-seed$seed" --recipe "$RECIPE" --split prepared/split.csv "${epochs[@]}" --seed "$seed"
    internal_runs+=("runs/release-internal-seed$seed")
  done
  INTERNAL=$(best_on_validation "${internal_runs[@]}")
  echo "shipping $INTERNAL, the best of ${internal_runs[*]} on the within-hospital validation"
  train runs/release-loso --recipe "$RECIPE" --split prepared/split-loso.csv "${epochs[@]}" --set patience="$loso_patience"
  mkdir -p runs/release
  cp "$INTERNAL/best.pt" runs/release/internal.pt
  cp runs/release-loso/best.pt runs/release/loso.pt
fi
# the bundled model being replaced, read before the export below overwrites it
mkdir -p runs
git show "$LAST_DEFAULT:covidxray/weights/covidxray-default.pt" > runs/last-default.pt
extras=()
if [ "$EXTRAS" = 1 ]; then
  # the same recipe on SIIM alone: what the other collections add (or cost) on the within-hospital rows
  .venv/bin/python -c "import pandas as p; t=p.read_csv('prepared/split.csv', dtype=str, keep_default_na=False); t[t.source == 'siim-covid19-detection'].to_csv('prepared/split-siim-only.csv', index=False)"
  train runs/release-siim-only --recipe "$RECIPE" --split prepared/split-siim-only.csv "${epochs[@]}"
  # the three-class model of the same recipe (not bundled: reported beside the binary default)
  train runs/release-3class --recipe "$RECIPE" --set task=3class --split prepared/split.csv "${epochs[@]}"
  extras=(--extra siim-only=runs/release-siim-only/best.pt)
fi
train runs/seed-internal --recipe "$BASELINE" --split prepared/split.csv "${seed_epochs[@]}"
train runs/seed-loso --recipe "$BASELINE" --split prepared/split-loso.csv "${seed_epochs[@]}"
$C export --slim --model runs/release/internal.pt --out covidxray/weights/covidxray-default.pt
$C export --onnx --lungs  # the fast path's ONNX files and sidecars for the new weights (docs/predict.md)
# severity read from the new classifier's features beside the lung features (docs/lungs-and-severity.md)
{ printf '# Severity fitted on the bundled classifier\n\nMade by `covidxray severity fit` in `scripts/release_model.sh`; nothing here is typed by hand.\n\n```\n'
  COLUMNS=160 $C severity fit --data "$DATA/covid-chestxray-dataset" --classifier covidxray/weights/covidxray-default.pt \
    --out covidxray/weights/severity-default-model.npz --release 2>&1 | grep -v -E '^wrote |━+ [0-9]+/[0-9]+'
  printf '```\n'; } > docs/reports/severity-fit.md
$C evaluate covidxray/weights/covidxray-default.pt --split prepared/split.csv --part test --out reports/release-internal
$C evaluate runs/release/loso.pt --split prepared/split-loso.csv --part test --part external --out reports/release-loso
$C evaluate runs/seed-internal/best.pt --split prepared/split.csv --part test --out reports/seed-internal
$C evaluate runs/seed-loso/best.pt --split prepared/split-loso.csv --part test --part external --out reports/seed-loso
if [ "$EXTRAS" = 1 ]; then
  $C evaluate runs/release-3class/best.pt --split prepared/split.csv --part test --no-audits --out reports/release-3class
  $C compare reports/release-3class reports/release-internal --out docs/reports/3class-comparison.md
fi
$C compare reports/release-internal reports/release-loso reports/seed-internal reports/seed-loso --out reports/comparison.md
how=()
if [ -n "$INTERNAL_RUN" ]; then  # the card says how the imported checkpoints were made
  how=(--how "$C data pack prepared/split.csv prepared/split-loso.csv --out packs/train.npz"
       --how "$C data pack prepared/split.csv prepared/split-loso.csv --out packs/train-176.npz --max-side 176 --quality 90"
       --how "# on a GPU machine (docs/training.md): the DenseNet-121 teachers, then their students"
       --how "PACK=packs/train.npz scripts/train_on_gpu.sh scripts/gpu-runs/comparison.txt"
       --how "PACK=packs/train-176.npz EPOCHS=40 PATIENCE=100 scripts/train_on_gpu.sh scripts/gpu-runs/distillation.txt"
       --how "# back here: unpack the returned OUT/*.tar files into runs/gpu-kd/, then"
       --how "INTERNAL_RUN=$INTERNAL_RUN LOSO_RUN=$LOSO_RUN bash scripts/release_model.sh")
fi
$C model-card --internal reports/release-internal --external reports/release-loso \
  --baseline reports/seed-internal --baseline reports/seed-loso --script scripts/release_model.sh "${how[@]}" --recipe "$RECIPE" \
  --out covidxray/weights/MODEL_CARD.md --readme README.md
for report in release-internal release-loso seed-internal seed-loso; do  # the summaries the docs link to
  mkdir -p "docs/reports/$report"
  cp "reports/$report/summary.md" "reports/$report/metrics.json" "docs/reports/$report/"
done
cp reports/comparison.md docs/reports/comparison.md
# the yardstick, bundled model beside seed-cnn, the SIIM-only twin and the bundled model it replaces
# (its leave-SIIM-out model is not kept: that row is in the last release's report), as docs/reports/generalisation.md
.venv/bin/python benchmarks/generalisation.py --split prepared/split.csv --loso-split prepared/split-loso.csv \
  --loso-model runs/release/loso.pt --seed-cnn runs/seed-internal/best.pt --seed-cnn-loso runs/seed-loso/best.pt \
  "${extras[@]}" --extra last-default=runs/last-default.pt --out docs/reports/generalisation.md
# five heat maps of the new default (two COVID-19, two normal from one hospital, one pneumonia) for the docs
.venv/bin/python scripts/heatmap_gallery.py --split prepared/split.csv --out docs/images/heatmaps-five.png
