#!/usr/bin/env python3
"""One command for the benign-noise benchmark: build keyward (release), generate the estate
into target/quality/estate, score it, write docs/detection-quality.md.

    python3 examples/quality/run.py                       # cargo build --release -p keyward first
    python3 examples/quality/run.py --keyward PATH        # use this binary, build nothing
    python3 examples/quality/run.py --keep-estate         # reuse target/quality/estate if present

Python 3.11, stdlib only.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keyward", help="keyward binary to score (default: build target/release/keyward)")
    ap.add_argument("--estate", default=os.path.join(ROOT, "target", "quality", "estate"))
    ap.add_argument("--scale", type=float, default=1.0, help="volume factor passed to the generator")
    ap.add_argument("--keep-estate", action="store_true", help="do not regenerate an existing estate")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "detection-quality.md"))
    ap.add_argument("--json", default=os.path.join(ROOT, "target", "quality", "scores.json"))
    a = ap.parse_args()
    kw = a.keyward
    if not kw:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        subprocess.run(["cargo", "build", "--release", "-p", "keyward"], cwd=ROOT, check=True)
        kw = os.path.join(target, "release", "keyward")
    kw = os.path.abspath(kw)
    if not (a.keep_estate and os.path.exists(os.path.join(a.estate, "truth.json"))):
        gen = [sys.executable, os.path.join(HERE, "generate.py"), "--out", a.estate]
        if a.scale != 1.0:
            gen += ["--scale", str(a.scale)]
        subprocess.run(gen, check=True)
    command = "python3 examples/quality/run.py" + (f" --scale {a.scale}" if a.scale != 1.0 else "")
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "score.py"), "--keyward", kw, "--estate", a.estate,
                    "--doc", a.doc, "--json", a.json, "--command", command], check=True)


if __name__ == "__main__":
    main()
