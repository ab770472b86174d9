"""Export a trained RUST run to a self-contained model directory:

    encoder.onnx   images (1, N, 3, H, W) → slsr (1, T, dim)
    pose.onnx      half_image (1, 3, H, W/2), slsr → latent (1, D)
    view_pose.onnx image (1, 3, H, W), slsr → latents (1, 2, D) a whole frame renders from
    render.onnx    slsr, latents (1, 2, D), uv (1, R, 2) with R dynamic → rgb (1, R, 3)
    segment.onnx   slsr, latents, uv (1, R, 2) → class logits (1, R, C)    (when a segmentation head exists)
    epe.onnx       slsr, latent_1, latent_2 → relative pose (1, 3 [+ 6])   (when an EPE head exists)
    weights.pt     the same weights for the torch backend (loaded with weights_only=True)
    metadata.json  sizes, classes, PCA basis and meanings, training-config hash, opset, checksums

The layout is the contract of `runtime/model_dir.py`. Every graph is checked with `onnx.checker`.
Graphs come from `model/graphs.py`, the modules the torch backend runs, through the
torch.export-based ONNX exporter (the TorchScript one is deprecated)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..io import atomic_write, sha256_file, write_json
from ..model.graphs import EncodeGraph, EPEGraph, PoseGraph, RenderGraph, ViewPoseGraph
from ..model.heads import HEADS
from ..runtime.model_dir import FORMAT, METADATA, PIXELS_MAX, WEIGHTS, exported_from

OPSET = 18


def _export(module: torch.nn.Module, args: tuple, names: list[str], outputs: list[str], path: Path,
            dynamic: dict | None = None) -> None:
    import onnx

    quiet = io.StringIO()  # the exporter narrates every stage on stdout and warns about torchvision
    with contextlib.redirect_stdout(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(module.eval(), args, input_names=names, output_names=outputs, dynamo=True,
                                    opset_version=OPSET, dynamic_shapes=dynamic, verbose=False)
    onnx.checker.check_model(program.model_proto, full_check=True)
    with atomic_write(path) as handle:
        handle.write(program.model_proto.SerializeToString())


def export_model(run: Path, out: Path) -> dict[str, Any]:
    """Write the model directory `out` for training run `run`; returns the metadata."""
    from ..data.store import read_manifest
    from .heads import head_file, load_head
    from .latent_analysis import LATENT_FILE
    from .trainer import CONFIG_FILE, load_model

    cfg, model, step = load_model(run)
    if cfg.model.variant != "rust":
        raise UserError(f"{run} is a {cfg.model.variant} run: only rust models are exported for the node")
    out = Path(out)
    if (out.is_file() or out.is_dir() and any(out.iterdir())) and exported_from(out) != sha256_file(Path(run) / CONFIG_FILE):
        raise UserError(f"refusing to write into {out}: it is not empty and holds no model exported from {run} "
                        "(choose a new --out, or delete it)")
    out.mkdir(parents=True, exist_ok=True)
    try:
        manifest = read_manifest(cfg.dataset)
    except Exception:
        manifest = {"kind": "unknown", "classes": []}
    heads, head_states = {}, {}
    for name in HEADS:
        if head_file(run, name).is_file():
            head_cfg, head, state = load_head(run, name, cfg.model)
            heads[name] = (head_cfg, head, state)
            head_states[name] = {"config": asdict(head_cfg), "head": head.state_dict(),
                                 "position_std": float(state.get("position_std", 1.0))}
    latent_path = Path(run) / LATENT_FILE
    latent = json.loads(latent_path.read_text()) if latent_path.is_file() else None
    m = cfg.model
    meta: dict[str, Any] = {
        "format": FORMAT, "variant": m.variant, "image_size": m.image_size, "num_inputs": m.num_inputs,
        "latent_dim": m.latent_dim, "dim": m.dim, "tokens": m.num_inputs * m.patches**2,
        "crossed_halves": m.crossed_halves,
        "data_kind": manifest.get("kind"), "classes": manifest.get("classes", []) if "segmentation" in heads else [],
        "segmentation": "segmentation" in heads, "epe": "epe" in heads,
        "epe_rotation": bool("epe" in heads and heads["epe"][0].rotation),
        "latent_space": {"pca": latent["pca"], "meanings": latent["meanings"]} if latent else None,
        "training_config_sha256": sha256_file(Path(run) / CONFIG_FILE), "training_step": step,
        "opset": OPSET, "torch": torch.__version__, "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "graphs": {},
    }
    s, n, d = m.image_size, m.num_inputs, m.latent_dim
    slsr = torch.zeros(1, meta["tokens"], m.dim)
    latent_in = torch.zeros(1, d)
    pixels = torch.export.Dim("pixels", min=1, max=PIXELS_MAX)
    pixel_inputs = (slsr, torch.randn(1, 2, d), torch.rand(1, 64, 2) * s)
    dynamic = {"slsr": None, "latents": None, "uv": {1: pixels}}
    jobs = [("encoder", EncodeGraph(model), (torch.rand(1, n, 3, s, s),), ["images"], ["slsr"], None),
            ("pose", PoseGraph(model), (torch.rand(1, 3, s, s // 2), slsr), ["half_image", "slsr"], ["latent"], None),
            ("view_pose", ViewPoseGraph(model), (torch.rand(1, 3, s, s), slsr), ["image", "slsr"], ["latents"], None),
            ("render", RenderGraph(model), pixel_inputs, ["slsr", "latents", "uv"], ["rgb"], dynamic)]
    if "segmentation" in heads:
        jobs.append(("segment", RenderGraph(model, heads["segmentation"][1]), pixel_inputs, ["slsr", "latents", "uv"],
                     ["logits"], dynamic))
    if "epe" in heads:
        # distinct example tensors: the exporter merges inputs that alias one tensor into one
        jobs.append(("epe", EPEGraph(heads["epe"][1], heads["epe"][2]["position_std"]),
                     (slsr, latent_in, latent_in.clone()), ["slsr", "latent_1", "latent_2"], ["relative_pose"], None))
    for name, module, args, inputs, outputs, dynamic in jobs:
        path = out / f"{name}.onnx"
        _export(module, args, inputs, outputs, path, dynamic)
        meta["graphs"][name] = {"file": path.name, "inputs": inputs, "outputs": outputs, "sha256": sha256_file(path)}
    with atomic_write(out / WEIGHTS) as handle:
        torch.save({"format": FORMAT, "model_config": asdict(m), "model": model.state_dict(), "heads": head_states}, handle)
    meta["weights_sha256"] = sha256_file(out / WEIGHTS)
    write_json(out / METADATA, meta)
    return meta
