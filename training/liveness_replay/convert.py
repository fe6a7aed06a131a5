"""Convert minivision's Silent-Face-Anti-Spoofing MiniFASNet weights (Apache-2.0) to ONNX.

    python -m training.liveness_replay.convert GIT_DIR   # GIT_DIR: a clone (or bare mirror) of
                                                          # github.com/minivision-ai/Silent-Face-Anti-Spoofing

No registry package ships these networks, so the two 80x80 models are converted here and committed
under renlian/models/weights/ with the repository's licence. The script reads the model code and the
.pth files from the pinned commit with `git show` (never from a work tree that might have drifted),
checks each file's sha256, builds the network with the repository's own MiniFASNet.py, and exports
it with the softmax appended, so the graph answers the three class probabilities (index 1 = live) that
the repository's test.py averages. Each ONNX file is then run in onnxruntime against torch on random
and constant inputs; the largest probability difference is printed and must stay below 1e-5.

Needs torch and onnx (training-only: `pip install torch onnx`); the service only runs the ONNX files.
The export is deterministic (fixed opset, no dynamo tracing), so a rerun writes the same sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from training.liveness_replay import UPSTREAM_COMMIT

WEIGHTS = Path(__file__).resolve().parents[2] / "renlian" / "models" / "weights"
COMMIT = UPSTREAM_COMMIT
MODEL_CODE = (
    "src/model_lib/MiniFASNet.py",
    "e498c4ec5e1ddfaba62b941a126c19d65aa564999f3309661fe43ee8bf38acd7",
)
LICENCE = ("LICENSE", "daf94bf1dc9cc5700fe5af2c7c0cbd1836e70d509ed78fd0bebef7432edee6fb")
OPSET = 13
SIZE = 80


@dataclass(frozen=True)
class Source:
    """One upstream .pth file and the ONNX file it becomes."""

    path: str
    sha256: str
    factory: str  # the MiniFASNet.py function that builds its network
    output: str


SOURCES = (
    Source(
        "resources/anti_spoof_models/2.7_80x80_MiniFASNetV2.pth",
        "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        "MiniFASNetV2",
        "minifasnet_v2_2.7.onnx",
    ),
    Source(
        "resources/anti_spoof_models/4_0_0_80x80_MiniFASNetV1SE.pth",
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        "MiniFASNetV1SE",
        "minifasnet_v1se_4.0.onnx",
    ),
)


def git_blob(git_dir: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{COMMIT}:{path}"], check=True, capture_output=True
    ).stdout


def verified(git_dir: Path, path: str, sha256: str) -> bytes:
    blob = git_blob(git_dir, path)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {sha256}")
    return blob


class Probabilities(torch.nn.Module):
    """The upstream network followed by the softmax its predict() applies."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def build(module: object, source: Source, blob: bytes, scratch: Path) -> torch.nn.Module:
    # The repository's get_kernel(80, 80): the last depthwise kernel covers the 5x5 feature map.
    net = getattr(module, source.factory)(conv6_kernel=((SIZE + 15) // 16, (SIZE + 15) // 16))
    pth = scratch / Path(source.path).name
    pth.write_bytes(blob)
    # Saved in 2020 with torch's legacy (non-zip) format; weights_only keeps unpickling to tensors.
    state = torch.load(pth, map_location="cpu", weights_only=True)
    # Trained under DataParallel: every key carries a "module." prefix, as anti_spoof_predict strips.
    state = {key.removeprefix("module."): value for key, value in state.items()}
    net.load_state_dict(state)
    return Probabilities(net).eval()


def export(model: torch.nn.Module, path: Path, source: Source) -> None:
    dummy = torch.zeros(1, 3, SIZE, SIZE)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["bgr"],
        output_names=["probabilities"],
        dynamic_axes={"bgr": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    graph = onnx.load(str(path))
    graph.producer_name = "renlian training/liveness_replay/convert.py"
    graph.doc_string = (
        f"minivision-ai/Silent-Face-Anti-Spoofing@{COMMIT} {source.path} (sha256 {source.sha256}), "
        "Apache-2.0. Input: N x 3 x 80 x 80 BGR 0-255 floats (no scaling); output: softmax over "
        "3 classes, index 1 = live."
    )
    onnx.save(graph, str(path))


def check(model: torch.nn.Module, path: Path) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    inputs = [
        rng.uniform(0, 255, size=(4, 3, SIZE, SIZE)).astype(np.float32),
        np.full((1, 3, SIZE, SIZE), 128.0, dtype=np.float32),
    ]
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            expected = model(torch.from_numpy(x)).numpy()
            (got,) = session.run(None, {"bgr": x})
            worst = max(worst, float(np.abs(np.asarray(got) - expected).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("git_dir", type=Path, help="the upstream repository's git directory")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        code = scratch / "minifasnet_upstream.py"
        code.write_bytes(verified(args.git_dir, *MODEL_CODE))
        spec = importlib.util.spec_from_file_location("minifasnet_upstream", code)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        (WEIGHTS / "minifasnet.LICENSE").write_bytes(verified(args.git_dir, *LICENCE))
        for source in SOURCES:
            model = build(module, source, verified(args.git_dir, source.path, source.sha256), scratch)
            out = WEIGHTS / source.output
            export(model, out, source)
            worst = check(model, out)
            if worst > 1e-5:
                raise SystemExit(f"{out.name}: onnxruntime differs from torch by {worst}")
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
            print(f"{out.name}: {out.stat().st_size} bytes, sha256 {digest}, max |ort - torch| {worst:.2e}")


if __name__ == "__main__":
    main()
