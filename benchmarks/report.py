#!/usr/bin/env python3
"""Markdown tables from benchmarks/results/*.json, for the README (so its numbers are the
files' numbers): python benchmarks/report.py [NAME ...]  prints them;
python benchmarks/report.py --readme  rewrites every `<!-- NAME -->…<!-- /NAME -->` block of
README.md and docs/*.md from the current results."""

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


def _training_poses(overrides: list[str]) -> str:
    """What poses a Table 1 row trained with, from its overrides."""
    o = dict(x.split("=", 1) for x in overrides)
    variant = o.get("model.variant", "rust")
    if variant == "rust":
        return "none"
    noise = lambda key: f"σ={o[key]}" if float(o.get(key, 0)) else "perfect"  # noqa: E731
    return f"inputs {noise('input_pose_noise') if variant == 'srt' else 'none'}, targets {noise('target_pose_noise')}"


def table1(d: dict) -> str:
    b = d["budget"]
    out = [f"`{b['config']}` ({b['steps']} steps; ablations {b['ablation_steps']}), data "
           + ", ".join(f"`{v}`" for v in b["data"].values()) + f"; {d['protocol']}."]
    for group in d.get("groups", ("dome", "textured", "ablation", "street")):  # table1.GROUPS
        rows = d.get(group) or {}
        if not rows:
            continue
        done = [r for r in rows.values() if "pooled_psnr" in r]
        out += ["", f"| {group} | training poses | pooled PSNR (dB) | mean PSNR ± s.e. | SSIM | object PSNR | "
                "paper PSNR |", "|---|---|---|---|---|---|---|"]
        for name, r in rows.items():
            if "pooled_psnr" not in r:
                out.append(f"| {name} | – | not finished yet | | | | {r.get('paper_psnr') or ''} |")
                continue
            poses = f"none; PE fed {r['pose_half']} halves" if "pose_half" in r else _training_poses(r.get("overrides", []))
            out.append(f"| {name} | {poses} | {r['pooled_psnr']:.2f} | {r['psnr']:.2f} ± {r['psnr_stderr']:.2f} | "
                       f"{r['ssim']:.3f} | {r['object_psnr']:.2f} | {r.get('paper_psnr') or ''} |")
        if done:
            first = done[0]
            out += ["", f"Baselines on the same pixels ({group}): constant colour {first['constant_colour_pooled_psnr']:.2f} dB "
                    f"pooled, background oracle {first['background_oracle_pooled_psnr']:.2f} dB; ground colour on objects "
                    f"{first['background_oracle_object_psnr']:.2f} dB."]
        if group == "dome" and d.get("claims"):
            out += ["", "The paper's claims (pooled PSNR): " + "; ".join(
                f"{k.replace('_', ' ')}: {'met' if c['met'] else 'NOT met'} "
                f"({', '.join(f'{n} {v:.2f}' for n, v in c.items() if n != 'met')})" for k, c in d["claims"].items()) + "."]
    return "\n".join(out)


def table2(d: dict) -> str:
    rows = [f"{d['scenes']} held-out scenes, fixed pair (views 0, 1); COLMAP sees {d['colmap_size']}×{d['colmap_size']} "
            "renders with true intrinsics; errors of view 1's position in view 0's frame (m).", "",
            "| method | views | success | MSE (m²) | R² | median error (m) | RUST on the same scenes: MSE / R² |",
            "|---|---|---|---|---|---|---|"]
    rust = next(iter(d["table"].values()))
    if "mean_guess_median_error_m" in rust:
        rows[0] += f" The scenes' mean relative position as a constant guess: median error {rust['mean_guess_median_error_m']} m (R² 0)."
    for name, r in d["table"].items():
        views = "7 (5 inputs + 2 targets)" if name.startswith("RUST") else name.split()[1]
        same = r.get("rust_on_same_scenes") or {}
        same_text = f"{same['mse']} / {same['r2']}" if "mse" in same else "–"
        rows.append(f"| {name.split(' ')[0]} | {views} | {r['success']}/{r['attempted']} ({100 * r['success_rate']:.0f} %) | "
                    f"{r.get('mse', '–')} | {r.get('r2', '–')} | {r.get('median_error_m', '–')} | {same_text} |")
    return "\n".join(rows)


PROBE_NAMES = {"x": "relative x (right)", "y": "relative y (down)", "z": "relative z (forward)",
               "cos_yaw": "relative yaw cos", "sin_yaw": "relative yaw sin", "own_height": "own height",
               "own_pitch": "own pitch"}
REFERENCES = {"sun": "the sun", "ground_tint": "the lighter ground side"}  # synthetic.scene_azimuths


def probe_name(key: str) -> str:
    """A probe's value in words: own_cos_yaw_<reference> → "own yaw cos (to <reference>)"."""
    if key.startswith(("own_cos_yaw_", "own_sin_yaw_")):
        ref = key[len("own_cos_yaw_"):]
        return f"own yaw {key[4:7]} (to {REFERENCES.get(ref, ref)})"
    return PROBE_NAMES.get(key, key)


def readout(d: dict) -> str:
    lat, epe, seg = d["latent"], d["epe"], d["segmentation"]
    rows = [f"Latent poses: {lat['latents']} targets of {lat['samples']} held-out (scene, view-set) samples from "
            f"{min(lat['scenes'], lat['samples'])} distinct scenes; explained "
            f"variance of PC1–3: {', '.join(f'{v:.2f}' for v in lat['explained_variance'][:3])}.", "",
            "| attribute | " + " | ".join(f"r with PC{k + 1}" for k in range(4)) + " |", "|---" * 5 + "|"]
    rows += [f"| {name} | " + " | ".join(f"{r:+.2f}" for r in rs[:4]) + " |" for name, rs in lat["pearson_r"].items()]
    rows += ["", f"Component meanings (|r| ≥ 0.5): {lat['meanings'] or 'none'}."
             + (f" A component holding each target's own height exactly would reach r {lat['own_height_r']:.2f} against "
                "the relative height (the first input camera's height varies as much): the most a code not relative to "
                "the first input view can score." if "own_height_r" in lat else "")]
    if probes := lat.get("linear_probe_r2"):
        rows += ["", f"Probes fitted on {lat['probe_samples']} training (scene, view-set) samples, R² on the held-out "
                 "latents (0 = the mean as a constant guess). Relative: the target in the first input camera's frame; "
                 "own: the target camera alone (yaw relative to a reference the scene shows).", "",
                 "| value | linear (one latent) | 15 nearest neighbours | pair (target + first view, bilinear) |",
                 "|---|---|---|---|"]
        pair, near = lat.get("pair_probe_r2", {}), lat.get("neighbour_probe_r2", {})
        rows += [f"| {probe_name(k)} | {v:.2f} | "
                 + " | ".join(f"{t[k]:.2f}" if k in t else "–" for t in (near, pair)) + " |" for k, v in probes.items()]
    rows += ["", f"EPE head ({epe['steps']} steps, {epe['pairs']} held-out target pairs): relative-position MSE "
             f"{epe['position_mse']} m², R² {epe['position_r2']}, median error {epe['position_error_m']} m"
             + (f", rotation error mean {epe['rotation_error_deg_mean']}° / median {epe['rotation_error_deg_median']}°"
                if "rotation_error_deg_mean" in epe else "")
             + (f" (no rotation as a guess: median {epe['identity_rotation_error_deg_median']}°)"
                if "identity_rotation_error_deg_median" in epe else "")
             + (f" (the held-out mean position as a constant guess: median error {epe['mean_position_error_m']} m, "
                "R² 0)" if "mean_position_error_m" in epe else "")
             + (f"; on {epe['train_fit']['scenes']} training scenes R² {epe['train_fit']['position_r2']}"
                if "train_fit" in epe else "") + ".", "",
             f"Segmentation head ({seg['steps']} steps"
             + (f", {'from the RGB decoder' if seg['config']['from_decoder'] else 'from random weights'}, class weights "
                + (f"∝ frequency^-{seg['config']['balance']}" if seg['config']['balance'] else "none")
                if "config" in seg else "") + f"): mIoU {seg['miou']}, pixel accuracy {seg['pixel_accuracy']} — "
             + ", ".join(f"{k} {v if v is not None else '–'}" for k, v in seg["iou"].items())
             + (f" (every pixel the most frequent class: mIoU {seg['majority_class_miou']}, pixel accuracy "
                f"{seg['majority_class_pixel_accuracy']})" if "majority_class_miou" in seg else "")
             + (f"; on {seg['train_fit']['scenes']} training scenes mIoU {seg['train_fit']['miou']}"
                if "train_fit" in seg else "") + "."]
    return "\n".join(rows)


def segmentation_heads(d: dict) -> str:
    """One row per way of starting and weighing the segmentation head (segmentation_heads.py)."""
    rows = d["results"]
    classes = list(rows[0]["iou"]) if rows else []
    out = [f"{d['steps']} steps each on `{d['run']}`, {rows[0]['scenes'] if rows else 0} held-out scenes' right halves "
           f"(every pixel the most frequent class: mIoU {rows[0]['majority_class_miou'] if rows else '–'}).", "",
           "| start | class weights | mIoU | pixel accuracy | " + " | ".join(classes) + " |", "|---" * (4 + len(classes)) + "|"]
    out += [f"| {'RGB decoder' if r['from_decoder'] else 'random'} | "
            + (f"frequency^-{r['balance']}" if r["balance"] else "none")
            + f" | {r['miou']:.3f} | {r['pixel_accuracy']:.3f} | "
            + " | ".join(f"{r['iou'][c]:.3f}" if r["iou"][c] is not None else "–" for c in classes) + " |" for r in rows]
    return "\n".join(out)


def inference(d: dict) -> str:
    measured = [r for r in d["results"] if "ms" in r]
    stages = list(measured[0]["ms"])
    rows = [f"{d['threads']} threads, `{d['model']}` ({d['image_size']}×{d['image_size']}); milliseconds (median):", "",
            "| backend | " + " | ".join(stages) + " | ≥ 10 Hz | render-128 GFLOP/s (of peak) |", "|---" * (len(stages) + 3) + "|"]
    for r in measured:
        rows.append(f"| {r['backend']} | " + " | ".join(str(r['ms'].get(k, '–')) for k in stages)
                    + f" | {'yes' if r['meets_10hz'] else 'no'} | {r['render_128_gflops_per_s']} ({100 * r['fraction_of_peak']:.0f} %) |")
    rows.append("")
    rows += [f"{r['backend']}: does not run here ({r['error']})." for r in d["results"] if "error" in r]
    rows.append(f"Render FLOPs: {d['render_gflops']['64']} GFLOP at 64×64, {d['render_gflops']['128']} GFLOP at 128×128; "
                f"measured fp32 matmul peak here: {d['peak_fp32_matmul_gflops']} GFLOP/s.")
    if "limit" in d:
        lim = d["limit"]
        rows.append(f"What limits 10 Hz: even at that peak a 128×128 render takes {lim['render_128_ms_at_peak']} ms; with the "
                    f"fastest encode ({lim['best_encode_ms']} ms) the render would have to reach "
                    f"{100 * lim['fraction_of_peak_needed_for_10hz']:.0f} % of peak.")
    q = d.get("quantisation", {})
    for kind in ("int8", "fp16"):
        if kind in q:
            r = q[kind]
            rows.append(f"{kind} renderer PSNR cost ({q['run']}, {q['scenes']} held-out views): "
                        + (f"{q['psnr_fp32']} → {r['psnr']} dB ({r['psnr_cost_db']:+.3f} dB; within 0.3 dB: "
                           f"{'yes' if r['within_0.3_db'] else 'no'})." if "psnr" in r else f"not measured ({r['error']})."))
    return "\n".join(rows)


def node(d: dict) -> str:
    """One row per camera image size (and Fast DDS transport) of node.json."""
    rows = ["| camera images | novel views (10 Hz requested) | end-to-end p50 / p99 | node CPU | "
            "encode / pose / render, mean (max) ms | frames lost in transport (of those sent per camera) | "
            "meets the goal |", "|---|---|---|---|---|---|---|"]
    for key, r in d["sizes"].items():
        lost = list(r["lost_in_transport"].values())
        stages = " / ".join(f"{v['mean_ms']} ({v['max_ms']})" for k, v in r["stage_latency_ms"].items()
                            if k in ("encode", "pose", "render"))
        p50, p99 = (f"{r[k]:.0f}" if r[k] is not None else "–" for k in ("latency_ms_p50", "latency_ms_p99"))
        defaults = r.get("dds_profile", "none") == "none" and r.get("transport", "default") == "default"
        variant = [v for v in (r.get("transport"), r.get("input_qos") and f"{r['input_qos']} QoS",
                               defaults and "Fast DDS defaults") if v not in (None, False, "default", "sensor_data QoS")]
        transport = f" ({', '.join(variant)})" if variant else ""
        rows.append(f"| {r['width']}×{r['height']}{transport} | {r['novel_view_hz']} Hz | {p50} / {p99} ms | "
                    f"{r['node_cpu_percent']:.0f} % | {stages} | {min(lost)}–{max(lost)} of "
                    f"{r['frames_published_in_window']} | {'yes' if r['meets_goal'] else 'no'} |")
    rows += ["", f"{d['cameras']} cameras at {d['camera_rate_hz']} Hz, {d['backend']}, `{d['model']}` "
             f"({d['image_size']}×{d['image_size']}: the node centre-crops and resizes), SLSR re-encoded every "
             f"{d['slsr_period']} s, worker tick {d['worker_period']} s, one fresh node per row, both processes with "
             "the shipped Fast DDS profile (`config/fastdds_large_images.xml`) unless a row says otherwise, measured over "
             f"the steady window after {d['warmup_seconds']:g} s of warm-up ({d['machine']['date']}, "
             f"{d['machine']['cpu_model']}, {d['machine']['cpu_count']} cores). Other load: {d['background_load']}. "
             f"Goal: {d['goal']}."]
    return "\n".join(rows)


def soak(d: dict) -> str:
    drop, rss, lat = d["frames_dropped"], d["rss_mib"], d["latency_ms"]
    rows = ["| frames in | processed | evicted unused / out of order / bad | SLSR encodes | novel views | "
            "bag s / wall s | RSS peak (MiB) | RSS 2nd → 4th quarter | plateaus |", "|---" * 9 + "|",
            f"| {d['frames_in']} | {d['frames_processed']} | {drop['evicted_unused']} / {drop['out_of_order']} / "
            f"{drop['bad']} | {d['encodes']} | {d['views_rendered']} | {d['bag_seconds']:.0f} / {d['wall_seconds']:.0f} | "
            f"{rss['peak']:.0f} | {rss['second_quarter_median']:.0f} → {rss['last_quarter_median']:.0f} "
            f"({100 * rss['growth']:+.1f} %) | {'yes' if d['rss_plateaus'] else 'no'} |", "",
            f"{d['cameras']} cameras × {d['rate_hz']:g} Hz × {d['minutes']:g} min at {d['image_size']}×{d['image_size']}, "
            f"{d['backend']}, novel views {d['render_rate']} Hz, poses {d['pose_rate']} Hz, SLSR every {d['slsr_period']} s "
            "(bag time). Latency ms p50 / p99: "
            + ", ".join(f"{k} {v['p50_ms']} / {v['p99_ms']}" for k, v in lat.items()) + f". Other load: {d['background_load']}."]
    return "\n".join(rows)


def learning(d: dict) -> str:
    curves = d.get("curves", {})
    evals = {v: {e["step"]: e for e in c["eval"]} for v, c in curves.items()}
    if not any(evals.values()):
        return "(no evaluation yet)"
    variants = [v for v in ("srt", "rust", "upsrt") if evals.get(v)]
    last = next(iter(evals[variants[0]].values()))
    rows = [f"Held-out: {d['eval_scenes']} scenes × 3 targets, right halves. Baselines on the same pixels: constant "
            f"colour {last['constant_colour_pooled_psnr']} dB pooled ({last['constant_colour_psnr']} dB as a mean of "
            f"per-target PSNRs), background oracle {last['background_oracle_pooled_psnr']} dB pooled; ground colour on "
            f"objects {last['background_oracle_object_psnr']} dB (object pixels: "
            f"{100 * last['object_pixel_fraction']:.1f} % of those scored).", "",
            "| step | " + " | ".join(f"{v.upper()} pooled / object / at another pose (dB)" for v in variants) + " |",
            "|---" * (len(variants) + 1) + "|"]
    steps = sorted({s for v in variants for s in evals[v]})
    shown = [s for s in steps if s % 1000 == 0 or s == steps[-1] or s == steps[0]]
    for step in shown:
        cells = []
        for v in variants:
            e = evals[v].get(step)
            cells.append(f"{e['pooled_psnr']:.2f} / {e['object_psnr']:.2f} / {e.get('swapped_pose_pooled_psnr', '–')}"
                         if e else "–")
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    crit = d.get("criteria") or {}
    if crit:
        at = crit.get("at_steps", {})
        rows += ["", "Issue 12's criteria at " + ", ".join(f"{v.upper()} step {s}" for v, s in at.items()) + ": "
                 + "; ".join(f"{k.replace('_', ' ')}: {'met' if ok else 'NOT met'}"
                             for k, ok in crit.items() if k != "at_steps") + "."]
    if probe := d.get("latent_probe"):
        rows += ["", f"What RUST's latent pose carries (step {probe['step']}): R² on the held-out targets of a linear "
                 "probe fitted on training scenes — target camera position in the first input camera's frame x (right) / y (down) / z (forward) "
                 + " / ".join(f"{probe['r2'][k]:.2f}" for k in ("x", "y", "z")) + ", relative yaw cos / sin "
                 + " / ".join(f"{probe['r2'][k]:.2f}" for k in ("cos_yaw", "sin_yaw")) + "."
                 + (" A 15-nearest-neighbour probe, which would read a curved latent space too: "
                    + " / ".join(f"{probe['neighbour_r2'][k]:.2f}" for k in ("x", "y", "z", "cos_yaw", "sin_yaw"))
                    + " (same order)." if "neighbour_r2" in probe else "")
                 + (f" What the target's own image shows of its camera, without another view — its height "
                    f"{probe['r2']['own_height']:.2f}, its pitch {probe['r2']['own_pitch']:.2f} (linear)."
                    if "own_height" in probe["r2"] else "")
                 + (" The pair probe (the target's and the first input view's latents, bilinear): relative yaw cos / sin "
                    + " / ".join(f"{probe['pair_r2'][k]:.2f}" for k in ("cos_yaw", "sin_yaw")) + "."
                    if "pair_r2" in probe else "")]
    if halves := d.get("rust_halves"):
        rows += ["", "RUST by half and by the latent each half is rendered from (pooled dB; the Pose Estimator fed the "
                 "left half unless named):", "",
                 "| run | right half (scored) | left half (seen) | right half, right-half latent | whole frame | "
                 "whole frame, each half from the other's latent | whole frame as the model renders it "
                 "(`view_latents`) | constant colour, whole frame |", "|---" * 8 + "|"]
        rows += [f"| {h['run']} | {h['right_half']} | {h['left_half_seen']} | {h['right_half_from_right_latent']} | "
                 f"{h['whole_frame']} | {h['whole_frame_crossed_halves']} | {h.get('whole_frame_as_rendered', '–')} | "
                 f"{h['constant_colour_whole_frame']} |" for h in halves]
    if split := d.get("by_seen_half"):
        rows += ["", f"Where the Pose Estimator's half shows no object ({100 * split['targets_seeing_no_object']:.0f} % of "
                 "the targets: plain ground and sky only, so the pose cannot be read from it) and where it shows one, "
                 "pooled PSNR of the scored halves: "
                 + "; ".join(f"{v.upper()} {split[v]['no_object_seen']:.2f} / {split[v]['objects_seen']:.2f} dB"
                             for v in ("srt", "rust") if v in split) + "."]
    init = d.get("init") or {}
    if init:
        rows += ["", "At initialisation (share of the SLSR's variance across scenes from the images, real / random "
                 "images; render change when the inputs are another scene's): "
                 + "; ".join(f"{v.upper()} {r['image_dependence']:.2f} / {r['image_dependence_random_images']:.2f}, "
                             f"{r['input_swap_effect']:.2f}" + (f", images ÷ rays {r['image_to_ray_effect']:.1f}"
                                                               if "image_to_ray_effect" in r else "")
                             for v, r in init.items()) + "."]
    if d.get("probes"):
        rows += ["", "Probes (one lever each, the same held-out targets unless the dataset changed; settings that "
                 "differ from the run above):", "",
                 "| run | step | changed | pooled / object / at another pose (dB) | constant colour, pooled (dB) | "
                 "latent probe R² y (down) / cos / sin yaw | pair probe R² cos / sin yaw |", "|---|---|---|---|---|---|---|"]
        rows += [f"| {p['run']} | {p['step']} | {', '.join(f'{k}={v}' for k, v in p['changed'].items())} | "
                 f"{p['pooled_psnr']:.2f} / {p['object_psnr']:.2f} / {p.get('swapped_pose_pooled_psnr', '–')} | "
                 f"{p['constant_colour_pooled_psnr']:.2f} | "
                 + (" / ".join(f"{p['latent_probe']['r2'][k]:.2f}" for k in ("y", "cos_yaw", "sin_yaw"))
                    if "latent_probe" in p else "–") + " | "
                 + (" / ".join(f"{p['latent_probe']['pair_r2'][k]:.2f}" for k in ("cos_yaw", "sin_yaw"))
                    if "pair_r2" in p.get("latent_probe", {}) else "–") + " |" for p in d["probes"]]
    m = d["machine"]
    rows += ["", f"Collected on {m.get('cpu_model', '?')} ({m.get('cpu_capability', '?')}, bf16 "
             f"{'fast' if m.get('bf16_fast') else 'slow'}) at {m['date']}; the runs span sessions and machines "
             "(each run's speed is in its log, `learning_runs/<variant>/metrics.jsonl`)."]
    return "\n".join(rows)


def render(name: str) -> str:
    data = load(name)
    kind = name.split("_")[0] if name.startswith(("readout_", "table2_")) else name
    return globals()[kind](data) if data else "(not measured yet)"


def update_docs(root: Path = RESULTS.parents[1]) -> None:
    """README.md and docs/*.md: every `<!-- NAME -->…<!-- /NAME -->` block from the results."""
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        update_blocks(path)


def update_blocks(path: Path) -> None:
    from rust_perception.io import atomic_write

    text = regenerate(path.read_text())
    with atomic_write(path, "w") as handle:
        handle.write(text)


def regenerate(text: str) -> str:
    """`text` with every `<!-- NAME -->…<!-- /NAME -->` block rendered from the results."""
    import re

    for name in re.findall(r"<!-- (\w+) -->\n", text):
        if f"<!-- /{name} -->" in text:
            text = re.sub(rf"<!-- {name} -->\n.*?<!-- /{name} -->", lambda _: f"<!-- {name} -->\n{render(name)}\n<!-- /{name} -->",
                          text, flags=re.S)
    return text


def main() -> int:
    if sys.argv[1:] == ["--readme"]:
        update_docs()
        return 0
    names = sys.argv[1:] or ["synthetic", "train_speed", "table1", "table2", "inference"]
    for name in names:
        print(f"<!-- {name} -->\n{render(name)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
