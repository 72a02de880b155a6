#!/usr/bin/env bash
# Train the GPU comparison runs from a pack, all at once on one GPU, within a deadline.
#
# Where the datasets are (here):  covidxray data pack prepared/split.csv prepared/split-loso.csv --out packs/train.npz
# On the GPU machine:             OUT=dir scripts/train_on_gpu.sh
# Back here, evaluate each returned checkpoint on the original files (docs/training.md, "GPU runs").
#
# Every run is binary. Runs still going at DEADLINE seconds are stopped; their best.pt (written
# atomically at each improvement) is kept. Each best.pt is slimmed to float16 and bundled, with
# its history.csv and log, into tar files small enough to be copied back (under 16 MB each).
set -u
PY=${PY:-python3}
PACK=${PACK:-packs/train.npz}
OUT=${OUT:-out/gpu}
EPOCHS=${EPOCHS:-30}
DEADLINE=${DEADLINE:-450}
EXTRA=${EXTRA:-}          # e.g. "--max-images-per-part 32" for a dry run
RUNS=${RUNS:-runs/gpu}
mkdir -p "$OUT" "$RUNS"

train() {  # name split workers [options...]
  local name=$1 split=$2 workers=$3; shift 3
  $PY -m covidxray train --split "$split" --pack "$PACK" --out "$RUNS/$name" --epochs "$EPOCHS" --patience 8 \
      --workers "$workers" --threads 2 $EXTRA "$@" >"$RUNS/$name.log" 2>&1 &
}

train densenet121-internal prepared/split.csv 4 --model densenet121 --batch-size 64
train densenet121-loso prepared/split-loso.csv 2 --model densenet121 --batch-size 64
train efficientnet-b0-loso prepared/split-loso.csv 2 --model efficientnet-b0 --batch-size 64
train xray-cnn-internal prepared/split.csv 1 --model xray-cnn
train xray-cnn-loso prepared/split-loso.csv 1 --model xray-cnn
train xray-cnn-loso-lungcrop prepared/split-loso.csv 1 --model xray-cnn --lung-crop
train xray-cnn-loso-noeq prepared/split-loso.csv 1 --model xray-cnn --no-equalise
train xray-cnn-loso-nocrop prepared/split-loso.csv 1 --model xray-cnn --crop-border 0
train xray-cnn-loso-strongaug prepared/split-loso.csv 1 --model xray-cnn --augmentation radiograph-strong

began=$SECONDS
while [ -n "$(jobs -rp)" ] && [ $((SECONDS - began)) -lt "$DEADLINE" ]; do sleep 5; done
for job in $(jobs -rp); do echo "deadline reached: stopping job $job"; kill "$job"; done
wait
echo "training phase took $((SECONDS - began)) s"

slim() {  # run -> $RUNS/slim/run/{best.pt,history.csv,log}
  local run=$1 target="$RUNS/slim/$1"
  mkdir -p "$target"
  cp "$RUNS/$run.log" "$target/log" 2>/dev/null
  cp "$RUNS/$run/history.csv" "$target/" 2>/dev/null
  [ -f "$RUNS/$run/best.pt" ] && $PY -m covidxray export --slim --model "$RUNS/$run/best.pt" --out "$target/best.pt" >/dev/null
  tail -n 3 "$RUNS/$run.log"
}
bundle() {  # tarname run...
  local name=$1; shift
  for run in "$@"; do echo "== $run"; slim "$run"; done
  tar -C "$RUNS/slim" -cf "$OUT/$name.tar" "$@"
}
bundle densenet-internal densenet121-internal
bundle densenet-loso densenet121-loso
bundle effnet-xray efficientnet-b0-loso xray-cnn-loso
bundle xray-variants-1 xray-cnn-loso-lungcrop xray-cnn-loso-noeq xray-cnn-loso-nocrop
bundle xray-variants-2 xray-cnn-loso-strongaug xray-cnn-internal
ls -la "$OUT"
