"""Benchmark: does the input gate let real radiographs from unseen hospitals through, and stop what is not one?

Usage: python benchmarks/gate_generalisation.py [--data ../shared/data] [--gate covidxray/weights/gate.npz]
Prints four tables (the ones in docs/gate.md):
  1. leave one collection out: the gate fitted on three collections, pass rate (ok or warning)
     on the fourth's frontal radiographs; target >= 0.98 for each;
  2. fitted on all four: per collection and per view (in-sample; the view where it is known);
  3. lateral views, out of fold (5 folds grouped by patient): refused or flagged;
  4. the refusal corpus (tests/refusal_corpus.py) through the bundled gate, read as uploads are:
     share refused or flagged per class; target >= 0.95 for each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

from covidxray.gate.runtime import DEFAULT_GATE_PATH, load_gate_model
from covidxray.gate.fit import COHEN, FOLDS, fit_gate, load_radiographs, verdicts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the corpus is test material, not the package's
from refusal_corpus import CORPUS_KINDS, refusal_corpus, screen_case  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def rates(statuses: list[str]) -> str:
    n = len(statuses)
    passed = sum(s != "refused" for s in statuses)
    warned = sum(s == "warning" for s in statuses)
    return f"{passed / n:.3f} | {passed}/{n} | {warned / n:.3f} | {n - passed}"


def leave_one_collection_out(radiographs) -> None:
    print("\n1. Leave one collection out: fitted on the other three, pass rate on the left-out collection's frontal radiographs")
    print("   (the COVID-19 collection holds the only laterals: its laterals stay in the lateral detector's fit when it is left out)\n")
    print("| left out | pass rate (ok or warning) | passed | warned | refused |")
    print("|---|---|---|---|---|")
    for collection in sorted({r.collection for r in radiographs}):
        training = [r for r in radiographs if r.collection != collection or (collection == COHEN and r.view == "lateral")]
        held_out = [r for r in radiographs if r.collection == collection and r.view == "frontal"]
        print(f"| {collection} | {rates(verdicts(fit_gate(training), held_out))} |", flush=True)


def per_collection_and_view(radiographs, model) -> None:
    print("\n2. Fitted on all four collections (the bundled gate), in-sample, per collection and view\n")
    print("| collection | view | pass rate | passed | warned | refused |")
    print("|---|---|---|---|---|---|")
    for collection in sorted({r.collection for r in radiographs}):
        chosen = [r for r in radiographs if r.collection == collection and r.view == "frontal"]
        for view in sorted({r.manifest_view for r in chosen}):
            subset = [r for r in chosen if r.manifest_view == view]
            print(f"| {collection} | {view} | {rates(verdicts(model, subset))} |")


def laterals_out_of_fold(radiographs) -> None:
    print(f"\n3. Lateral views out of fold ({FOLDS} folds grouped by patient; frontal radiographs of other collections always in)\n")
    cohen = [r for r in radiographs if r.collection == COHEN]
    others = [r for r in radiographs if r.collection != COHEN]
    groups = np.array([r.group for r in cohen])
    laterals, frontals = [], []
    for train, held_out in GroupKFold(FOLDS).split(cohen, groups=groups):
        model = fit_gate(others + [cohen[i] for i in train])
        tested = [cohen[i] for i in held_out]
        found = verdicts(model, tested)
        laterals += [s for s, r in zip(found, tested) if r.view == "lateral"]
        frontals += [s for s, r in zip(found, tested) if r.view == "frontal"]
    n = len(laterals)
    print("| images | refused | warned | refused or flagged |")
    print("|---|---|---|---|")
    print(f"| Cohen laterals ({n}) | {laterals.count('refused')} | {laterals.count('warning')} | "
          f"{(n - laterals.count('ok')) / n:.3f} |")
    m = len(frontals)
    print(f"| Cohen frontals ({m}), same folds | {frontals.count('refused')} | {frontals.count('warning')} | "
          f"pass rate {(m - frontals.count('refused')) / m:.3f} |")


def corpus(data: Path, model) -> None:
    print("\n4. Refusal corpus through the bundled gate (files read as uploads are): refused or flagged per class\n")
    cases = refusal_corpus(data)
    print("| class | cases | refused | warned | passed silently | refused or flagged |")
    print("|---|---|---|---|---|---|")
    for kind in CORPUS_KINDS:
        found = [screen_case(case, model) for case in cases if case.kind == kind]
        statuses = [r.status for r in found]
        n = len(statuses)
        print(f"| {kind} | {n} | {statuses.count('refused')} | {statuses.count('warning')} | {statuses.count('ok')} | "
              f"{(n - statuses.count('ok')) / n:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--gate", type=Path, default=DEFAULT_GATE_PATH, help="the fitted gate for tables 2 and 4")
    parser.add_argument("--skip", default="", help="comma-separated table numbers to skip")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    radiographs = load_radiographs(args.data)
    print(f"{len(radiographs)} radiographs read and described in {time.perf_counter() - start:.0f} s")
    model = load_gate_model(args.gate)
    skip = set(args.skip.split(","))
    if "1" not in skip:
        leave_one_collection_out(radiographs)
    if "2" not in skip:
        per_collection_and_view(radiographs, model)
    if "3" not in skip:
        laterals_out_of_fold(radiographs)
    if "4" not in skip:
        corpus(args.data, model)
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
