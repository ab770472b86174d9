#!/usr/bin/env python3
"""The GPU smoke test's steps (run by benchmarks/gpu_smoke.sh on a machine with an NVIDIA GPU, no
network, from a copied working tree with PYTHONPATH=.). Every step runs in its own try/except and
is recorded — "ok", "skipped" with the reason, or "error" with the message — in one JSON file
written after each step, so a step that fails or a run cut off by the time limit still reports:

  probe       versions: Python, torch/CUDA, GPU, ONNX Runtime and its providers, TensorRT, libcudart
  tensorrt    build the prepared model's plans, reload them from the cache (< 5 s), compare every
              graph with CPU ONNX Runtime (render at 1, 4095, 16384 and 20000 pixels)
  ort_trt     ONNX Runtime's TensorRT provider on the same graphs (when present)
  latency     encode + 128×128 render on CUDA in fp32 / bf16 / fp16 autocast, cpu and paper sizes
  training    60 training steps bf16 vs fp32 (the prepared dataset, cpu model)
  ddp         `torchrun --nproc_per_node 1` (NCCL): SIGTERM mid-run, then resume to the end

The model and dataset come from benchmarks/prepare_gpu_smoke.py (runs/gpu_smoke/, prepared on the
CPU side). Without a GPU every GPU step is skipped with the reason."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "runs" / "gpu_smoke"
RENDER_PIXELS = (1, 4095, 16384, 20000)


class Skip(Exception):
    """A step that cannot run here; its message is the reason."""


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def views(model, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (model.image_size,) * 2 + (3,), dtype=np.uint8) for _ in range(model.num_inputs)]


def probe(report, args) -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for name in ("torch", "onnxruntime", "tensorrt"):
        try:
            module = __import__(name)
            out[name] = module.__version__
        except Exception as exc:  # noqa: BLE001 - recorded, not raised: the probe reports what is missing
            out[name] = f"unavailable: {type(exc).__name__}: {exc}"
    if cuda_available():
        import torch

        out["cuda"] = {"torch_cuda": torch.version.cuda, "device": torch.cuda.get_device_name(),
                       "capability": list(torch.cuda.get_device_capability()), "bf16": torch.cuda.is_bf16_supported()}
    try:
        import onnxruntime

        out["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    try:
        from rust_perception.runtime.cuda import CudaRuntime

        out["cudart"] = CudaRuntime.load().device_info().as_dict()
    except Exception as exc:  # noqa: BLE001
        out["cudart"] = f"unavailable: {exc}"
    return out


def compare_graphs(engine, reference) -> dict:
    """Max |difference| of every graph of `engine` against `reference` (CPU ONNX Runtime)."""
    model = reference.model
    inputs = views(model)
    diffs = {"encoder": float(np.abs(engine.encode(inputs) - reference.encode(inputs)).max())}
    slsr = reference.encode(inputs)
    diffs["pose"] = float(np.abs(engine.estimate_pose(slsr, inputs[1]) - reference.estimate_pose(slsr, inputs[1])).max())
    latent = reference.estimate_pose(slsr, inputs[1])
    halves = reference.view_latents(slsr, inputs[1])  # a crossed model's two rows: the in-graph choice is compared too
    rng = np.random.default_rng(1)
    for pixels in RENDER_PIXELS:
        uv = rng.uniform(-0.5, model.image_size - 0.5, (pixels, 2)).astype(np.float32)
        diffs[f"render_{pixels}"] = float(np.abs(engine.render(slsr, halves, uv) - reference.render(slsr, halves, uv)).max())
    if model.segmentation:
        a = engine._render(slsr, halves, engine.pixel_grid(), 4096, graph="segment")
        b = reference._render(slsr, halves, reference.pixel_grid(), 4096, graph="segment")
        diffs["segment_logits"] = float(np.abs(a - b).max())
    if model.epe:
        other = reference.estimate_pose(slsr, inputs[3])
        diffs["epe_position"] = float(np.abs(engine.relative_pose(slsr, latent, other)["position"]
                                             - reference.relative_pose(slsr, latent, other)["position"]).max())
    return diffs


def cpu_reference(model_dir):
    import onnxruntime

    from rust_perception.runtime.onnxruntime_backend import OnnxRuntimeEngine

    real = onnxruntime.get_available_providers
    onnxruntime.get_available_providers = lambda: ["CPUExecutionProvider"]
    try:
        return OnnxRuntimeEngine(model_dir)
    finally:
        onnxruntime.get_available_providers = real


def tensorrt(report, args) -> dict:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        raise Skip(f"TensorRT does not import: {exc}") from None
    from rust_perception.runtime.tensorrt_backend import TensorRTEngine

    cache = Path(tempfile.mkdtemp(prefix="trt_plans_"))
    out = {}
    for fp16 in (True, False):
        label = "fp16" if fp16 else "fp32"
        started = time.perf_counter()
        engine = TensorRTEngine(args.model, fp16=fp16, cache=cache)
        out[f"{label}_build_s"] = round(time.perf_counter() - started, 2)
        engine.close()
        started = time.perf_counter()
        engine = TensorRTEngine(args.model, fp16=fp16, cache=cache)
        out[f"{label}_reload_s"] = round(time.perf_counter() - started, 2)
        out[f"{label}_reload_under_5s"] = out[f"{label}_reload_s"] < 5
        out[f"{label}_max_abs_diff"] = compare_graphs(engine, cpu_reference(args.model))
        engine.close()
    out["plans"] = sorted(p.name for p in cache.glob("*.plan"))
    shutil.rmtree(cache, ignore_errors=True)
    return out


def ort_trt(report, args) -> dict:
    import onnxruntime

    if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
        raise Skip(f"ONNX Runtime has no TensorRT provider here ({onnxruntime.get_available_providers()})")
    from rust_perception.runtime.onnxruntime_backend import OnnxRuntimeEngine

    cache = Path(tempfile.mkdtemp(prefix="ort_trt_"))
    started = time.perf_counter()
    engine = OnnxRuntimeEngine(args.model, cache=cache)
    out = {"session_s": round(time.perf_counter() - started, 2), "providers": engine.providers,
           "max_abs_diff": compare_graphs(engine, cpu_reference(args.model))}
    out["first_run_and_compare_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    OnnxRuntimeEngine(args.model, cache=cache).render(np.zeros((engine.model.tokens, engine.model.dim), np.float32),
                                                      np.zeros(engine.model.latent_dim, np.float32))
    out["cached_session_and_render_s"] = round(time.perf_counter() - started, 2)
    shutil.rmtree(cache, ignore_errors=True)
    return out


def latency(report, args) -> dict:
    if not cuda_available():
        raise Skip("torch sees no CUDA device")
    import torch

    from rust_perception.config import load_config
    from rust_perception.model.config import ModelConfig
    from rust_perception.model.graphs import EncodeGraph, RenderGraph
    from rust_perception.model.scene_model import SceneModel

    out = {}
    for size in ("cpu", "paper"):
        cfg = load_config(ModelConfig, ROOT / "config" / f"model_{size}.yaml")
        model = SceneModel(cfg).cuda().eval()
        encode, render = EncodeGraph(model), RenderGraph(model)
        images = torch.rand(1, cfg.num_inputs, 3, cfg.image_size, cfg.image_size, device="cuda")
        c = (torch.arange(128, device="cuda") + 0.5) * (cfg.image_size / 128) - 0.5
        v, u = torch.meshgrid(c, c, indexing="ij")
        uv = torch.stack([u.ravel(), v.ravel()], -1)[None]
        latent = torch.zeros(1, 2, cfg.latent_dim, device="cuda")  # both halves' latents
        for dtype in ("float32", "bfloat16", "float16"):
            times = []
            with torch.no_grad(), torch.autocast("cuda", dtype=getattr(torch, dtype), enabled=dtype != "float32"):
                for i in range(25):
                    torch.cuda.synchronize()
                    started = time.perf_counter()
                    render(encode(images), latent, uv)
                    torch.cuda.synchronize()
                    if i >= 5:
                        times.append(time.perf_counter() - started)
            out[f"{size}_{dtype}_encode_render128_ms"] = round(1000 * float(np.median(times)), 2)
        del model, encode, render
        torch.cuda.empty_cache()
    return out


def training(report, args) -> dict:
    if not cuda_available():
        raise Skip("torch sees no CUDA device")
    from rust_perception.training.config import load_train_config
    from rust_perception.training.trainer import Trainer

    out = {}
    for precision in ("fp32", "bf16"):
        cfg = load_train_config(ROOT / "config" / "train_dome.yaml",
                                [f"dataset={WORK / 'data'}", f"precision={precision}", "steps=60", "batch_size=8",
                                 "eval_every=60", "eval_scenes=2", "checkpoint_every=60", "workers=2"])
        run = Path(tempfile.mkdtemp(prefix=f"train_{precision}_"))
        started = time.perf_counter()
        result = Trainer(cfg, run, progress=False).train()
        out[precision] = {"seconds": round(time.perf_counter() - started, 1), "step": result["step"],
                          "eval_psnr": (result.get("eval") or {}).get("psnr"),
                          "last_loss": [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                                        if '"loss"' in line][-1]["loss"]}
        shutil.rmtree(run, ignore_errors=True)
    return out


def ddp(report, args) -> dict:
    if not cuda_available():
        raise Skip("torch sees no CUDA device (NCCL needs one)")
    if shutil.which("torchrun") is None:
        raise Skip("torchrun is not on PATH")
    run = Path(tempfile.mkdtemp(prefix="ddp_"))
    command = ["torchrun", "--nproc_per_node", "1", str(ROOT / "trainer" / "train.py"), "--config",
               str(ROOT / "config" / "train_dome.yaml"), "--run", str(run / "run"), "--quiet",
               "--set", f"dataset={WORK / 'data'}", "--set", "steps=400", "--set", "batch_size=8",
               "--set", "checkpoint_every=1000", "--set", "eval_every=1000", "--set", "eval_scenes=2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    time.sleep(args.ddp_sigterm_after)
    os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    checkpoints = sorted(p.name for p in (run / "run" / "checkpoints").glob("*.pt")) if (run / "run").is_dir() else []
    out = {"sigterm_exit": process.returncode, "checkpoints_after_sigterm": checkpoints,
           "sigterm_tail": (stderr or stdout)[-600:]}
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    out["resume_exit"] = resumed.returncode
    out["resume_tail"] = (resumed.stderr or resumed.stdout)[-600:]
    out["checkpoints_after_resume"] = sorted(p.name for p in (run / "run" / "checkpoints").glob("*.pt"))
    shutil.rmtree(run, ignore_errors=True)
    return out


STEPS = {"probe": probe, "tensorrt": tensorrt, "ort_trt": ort_trt, "latency": latency, "training": training, "ddp": ddp}


def main() -> int:
    from rust_perception.io import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results") / "gpu_smoke.json")
    parser.add_argument("--model", type=Path, default=WORK / "model")
    parser.add_argument("--steps", nargs="*", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--ddp-sigterm-after", type=float, default=25.0, help="seconds before torchrun gets SIGTERM")
    args = parser.parse_args()
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "model": str(args.model), "steps": {}}
    for name in args.steps:
        started = time.perf_counter()
        try:
            report["steps"][name] = {"status": "ok", **STEPS[name](report, args)}
        except Skip as exc:
            report["steps"][name] = {"status": "skipped", "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every step reports, whatever fails
            report["steps"][name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                                     "traceback": traceback.format_exc()[-2000:]}
        report["steps"][name]["seconds"] = round(time.perf_counter() - started, 1)
        write_json(args.out, report)
        print(f"gpu_smoke: {name}: {report['steps'][name]['status']} ({report['steps'][name]['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
