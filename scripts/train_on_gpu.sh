#!/usr/bin/env bash
# Train a list of runs from a pack, all at once on one GPU, within a deadline.
#
# Where the datasets are (here):  covidxray data pack prepared/split.csv prepared/split-loso.csv --out packs/train.npz
# On the GPU machine:             OUT=dir scripts/train_on_gpu.sh scripts/gpu-runs/comparison.txt
# Back here, evaluate each returned checkpoint on the original files (docs/training.md, "GPU runs").
#
# A run list has one run per line: name, split file, DataLoader workers, then `covidxray train`
# options: a recipe and its changes, e.g. `--recipe xray-cnn --set width=32` (# starts a comment).
# Runs still going at DEADLINE seconds are stopped; their best.pt (written atomically at each
# improvement) is kept. Each best.pt is slimmed to float16 and put,
# with its history.csv and log, into OUT/NAME.tar, small enough to be copied back.
set -u
LIST=${1:?usage: scripts/train_on_gpu.sh RUN_LIST}
PY=${PY:-python3}
PACK=${PACK:-packs/train.npz}
OUT=${OUT:-out/gpu}
EPOCHS=${EPOCHS:-30}
PATIENCE=${PATIENCE:-8}
DEADLINE=${DEADLINE:-450}
EXTRA=${EXTRA:-}          # e.g. "--max-images-per-part 32" for a dry run
RUNS=${RUNS:-runs/gpu}
mkdir -p "$OUT" "$RUNS"

names=()
while read -r name split workers options; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  names+=("$name")
  # shellcheck disable=SC2086  # options are words on purpose
  $PY -m covidxray train --split "$split" --pack "$PACK" --out "$RUNS/$name" --epochs "$EPOCHS" --set patience="$PATIENCE" \
      --workers "$workers" --threads 2 $EXTRA $options >"$RUNS/$name.log" 2>&1 &
done <"$LIST"

began=$SECONDS
while [ -n "$(jobs -rp)" ] && [ $((SECONDS - began)) -lt "$DEADLINE" ]; do sleep 5; done
for job in $(jobs -rp); do echo "deadline reached: stopping job $job"; kill "$job"; done
wait
echo "training phase took $((SECONDS - began)) s"

# slim every best.pt in one process (one torch import), then one tar per run
$PY - "$RUNS" "${names[@]}" <<'PY'
import sys
from pathlib import Path
from covidxray.inference.checkpoint import slim_checkpoint
runs = Path(sys.argv[1])
for name in sys.argv[2:]:
    if (runs / name / "best.pt").is_file():
        slim_checkpoint(runs / name / "best.pt", runs / "slim" / name / "best.pt")
PY
for name in "${names[@]}"; do
  target="$RUNS/slim/$name"
  mkdir -p "$target"
  cp "$RUNS/$name.log" "$target/log" 2>/dev/null
  cp "$RUNS/$name/history.csv" "$target/" 2>/dev/null
  echo "== $name"; tail -n 2 "$RUNS/$name.log"
  tar -C "$RUNS/slim" -cf "$OUT/$name.tar" "$name"
done
ls -la "$OUT"
