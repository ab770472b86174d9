#!/usr/bin/env python3
"""Markdown tables from benchmarks/results/*.json, for the README (so its numbers are the
files' numbers): python benchmarks/report.py [synthetic|train_speed|table1]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def synthetic(d: dict) -> str:
    rows = ["| kind | size | views/s | run |", "|---|---|---|---|"]
    rows += [f"| {r['kind']} | {r['size']}×{r['size']} | {r['views_per_s']} | {r['scenes']} scenes × "
             f"{r['views_per_scene']} views in {r['seconds']} s |" for r in d["results"]]
    if "full_run" in d:
        f = d["full_run"]
        rows.append(f"| dome (target: ≥ 100 views/s) | 64×64 | {f['views_per_s']} | 1000 scenes × 10 views in "
                    f"{f['seconds']} s (< 120 s: {'yes' if f['meets_target'] else 'no'}) |")
    return "\n".join(rows)


def train_speed(d: dict) -> str:
    rows = ["| model | precision | s/step | steps/s | peak RSS (MiB) | parameters |", "|---|---|---|---|---|---|"]
    rows += [f"| {r['variant']} | {r['precision']} | {r['seconds_per_step']} | {r['steps_per_s']} | {r['peak_rss_mib']} | "
             f"{r['parameters'] / 1e6:.2f} M |" for r in d["results"]]
    if "bf16_speedup" in d:
        rows.append("")
        rows.append("bf16 speed-up over fp32 (same machine, same run): "
                    + ", ".join(f"{k} ×{v}" for k, v in d["bf16_speedup"].items())
                    + f"; the start-up probe says bf16 is {'fast' if d['bf16_probe_says_fast'] else 'slow'} here.")
    return "\n".join(rows)


def table1(d: dict) -> str:
    b = d["budget"]
    out = [f"Budget per model: {b['steps']} steps × batch {b['batch_size']} × 3 targets × {b['rays_per_target']} "
           f"pixels, lr {b.get('lr', 2e-4)}, `{b['model']}` widths, fp32; evaluated on {b['eval_scenes']} held-out scenes × 3 targets "
           "(PSNR/SSIM on right halves)."]
    for kind, paper in (("dome", "msn"), ("street", "street_view")):
        if not d.get(kind):
            continue
        out += ["", f"| {kind} | training poses | PSNR (dB) | SSIM | paper PSNR ({paper}) |", "|---|---|---|---|---|"]
        for name, r in d[kind].items():
            poses = ("none" if r["variant"] == "rust" else
                     f"inputs {'σ=' + str(r['input_pose_noise']) if r['input_pose_noise'] else 'perfect' if r['variant'] == 'srt' else 'none'}, "
                     f"targets {'σ=' + str(r['target_pose_noise']) if r['target_pose_noise'] else 'perfect'}")
            out.append(f"| {name} | {poses} | {r['psnr']:.2f} ± {r['psnr_stderr']:.2f} | {r['ssim']:.3f} | "
                       f"{d['paper_psnr'][paper].get(name, '')} |")
    return "\n".join(out)


def main() -> int:
    names = sys.argv[1:] or ["synthetic", "train_speed", "table1"]
    for name in names:
        data = load(name)
        print(f"<!-- {name} -->\n{globals()[name](data) if data else '(not measured yet)'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
