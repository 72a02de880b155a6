#!/usr/bin/env bash
# Wheel smoke test: build the wheel, install it (not editable) into a clean venv, run each command once.
#
# The clean venv borrows the third-party packages of $VENV (a path line in a .pth file: no
# download, and $VENV's own editable covidxray stays invisible, since .pth files of a borrowed
# folder are not processed), checks that every requirement the wheel declares is met there, and
# runs from an empty folder, so only what the wheel ships is found: bundled weights, samples, the
# web page, evaluation/published.csv. HOME points at an empty folder, which must stay empty.
#
#   scripts/wheel_smoke.sh            # uses .venv (make install first)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV=${VENV:-.venv}
PY=$REPO/$VENV/bin/python
WORK=$(mktemp -d "${TMPDIR:-/tmp}/covidxray-wheel.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n== wheel smoke: %s\n' "$*"; }

step "build the wheel"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$WORK/dist" "$REPO" 2>&1 | grep -v "^$" || true
WHEEL=$(ls "$WORK"/dist/covidxray-*.whl)
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["covidxray/evaluation/published.csv", "covidxray/weights/covidxray-default.pt", "covidxray/weights/gate.npz",
          "covidxray/serve/static/index.html", "covidxray/samples/ATTRIBUTION.md", "covidxray/py.typed"]
missing = [name for name in needed if name not in names]
assert not missing, f"the wheel lacks {missing}"
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files, package data present")
EOF

step "install it into a clean venv (not editable)"
"$PY" -m venv "$WORK/venv"
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BORROWED=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$BORROWED" > "$SITE/zz-borrowed-dependencies.pth"
"$WORK/venv/bin/python" -m pip install --quiet --no-deps --no-index "$WHEEL"
BIN=$WORK/venv/bin
mkdir -p "$WORK/run" "$WORK/home"
cd "$WORK/run"
export HOME=$WORK/home MPLCONFIGDIR=$WORK/mpl
"$BIN/python" - <<'EOF'
"""Every requirement the wheel declares (and those of its serve extra) is met; covidxray is the wheel's."""
import importlib.metadata as metadata
from pathlib import Path

import covidxray
from packaging.requirements import Requirement

assert "site-packages" in covidxray.__file__ and "/venv/" in covidxray.__file__, covidxray.__file__
problems = []
for text in metadata.requires("covidxray") or []:
    requirement = Requirement(text)
    if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in ("", "serve")):
        continue
    try:
        version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        problems.append(f"{requirement}: not installed")
        continue
    if not requirement.specifier.contains(version, prereleases=True):
        problems.append(f"{requirement}: {version} installed")
assert not problems, problems
print(f"covidxray {covidxray.__version__} from {Path(covidxray.__file__).parent}; declared requirements met")
EOF
SAMPLES=$("$BIN/python" -c 'import covidxray.inference.predictor as p; print(p.SAMPLES)')

step "covidxray predict on the bundled samples"
"$BIN/covidxray" predict "$SAMPLES" --output results.csv --heatmaps maps > /dev/null
test "$(ls maps | wc -l)" -ge 1 && test "$(wc -l < results.csv)" -eq 6

step "the Python API, as the README shows it"
"$BIN/python" -c "import covidxray; m = covidxray.load_model(); print(m.screen(['$SAMPLES/covid-cc-by-12941_2020_358_Fig1.jpg'])[0])" | grep -q "status=<Status.SCREENED: 'screened'>"

step "covidxray predict --files-from, sharded, resumed, to JSON Lines"
ls "$SAMPLES"/*.jpg "$SAMPLES"/*.png > inputs.txt
"$BIN/covidxray" predict --files-from inputs.txt --shard 1/2 --output rows.jsonl > /dev/null
"$BIN/covidxray" predict --files-from inputs.txt --output rows.jsonl --resume > /dev/null
test "$(wc -l < rows.jsonl)" -eq "$(wc -l < inputs.txt)"

step "covidxray data prepare on a small tree"
"$BIN/python" - "$SAMPLES" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

rng = np.random.default_rng(0)
for label in ("COVID", "Normal"):
    folder = Path("tree") / label
    folder.mkdir(parents=True)
    for number in range(8):
        rows = np.linspace(0.2, 0.9, 96)[:, None] * rng.uniform(0.5, 1.0, (1, 96))
        picture = np.clip(rows + rng.normal(0, 0.08, (96, 96)), 0, 1)
        Image.fromarray((picture * 255).astype(np.uint8)).save(folder / f"{label.lower()}-{number}.png")
EOF
"$BIN/covidxray" data prepare tree --out prepared > /dev/null
test -s prepared/split.csv

step "covidxray evaluate (bundled model, the tree, every part)"
"$BIN/covidxray" evaluate "$("$BIN/python" -c 'import covidxray.inference.predictor as p; print(p.DEFAULT_MODEL)')" \
  --split prepared/split.csv --part all --out report --resamples 20 --no-audits > /dev/null
test -s report/report.html && test -s report/metrics.json

step "covidxray validate on the tree (a folder per class), and the recipe that ships"
"$BIN/covidxray" validate tree --out site-check --resamples 20 > /dev/null
test -s site-check/report.html && test -s site-check/site-check.json
"$BIN/covidxray" recipes default | grep -q 'lung_crop = true'

step "covidxray serve: health check open, the API behind its token"
PORT=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COVIDXRAY_API_TOKEN=wheel-smoke-token-0123456789 "$BIN/covidxray" serve --port "$PORT" > serve.log 2>&1 &
SERVER_PID=$!
"$BIN/python" - "$PORT" <<'EOF'
import json, sys, time, urllib.error, urllib.request

for _ in range(240):
    try:
        answer = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/health", timeout=2))
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit(open("serve.log").read()[-2000:] + "\nserve did not answer /api/v1/health")
assert answer["status"] == "ok" and "not a medical device" in answer["notice"], answer
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/model", timeout=5)
    sys.exit("/api/v1/model answered without the token")
except urllib.error.HTTPError as refusal:
    assert refusal.code == 401, refusal.code
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/v1/model",
                                 headers={"Authorization": "Bearer wheel-smoke-token-0123456789"})
assert json.load(urllib.request.urlopen(request, timeout=5))["architecture"] == "xray-cnn"
print("health:", answer["status"], answer["model"]["name"], "; the API asks for its token")
EOF
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

step "nothing written into HOME"
if [ -n "$(find "$HOME" -type f | head -1)" ]; then find "$HOME" -type f; echo "files were written into HOME"; exit 1; fi
echo "wheel smoke test passed"
