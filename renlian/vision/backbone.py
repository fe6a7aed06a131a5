"""The recognition networks as feature extractors for the attribute heads.

Both embedders' final vectors are trained to ignore age, gender and expression, but their middle
layers still carry them: on UTKFace, a linear head on the pooled last feature maps of SFace
(`conv_14_relu`) and MobileFaceNet (`509`) reaches gender 90.5%, age MAE 5.0 years, race 87%, where
the 512-d mbf embedding alone gives 80%, 9.3 years and 80% (training/attributes, DESIGN.md). We expose
those maps as extra graph outputs, so one pass of each network over one aligned crop feeds every head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from renlian.models.derived import derived_graph
from renlian.models.runtime import model_session_from_bytes
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import EMBEDDER_INPUTS

# The map each network contributes: 1024 x 7 x 7 (SFace) and 512 x 7 x 7 (mbf) on a 112x112 crop.
FEATURE_LAYERS = {"sface": "conv_14_relu", "mbf": "509"}
GRID = 7

FeatureMap = NDArray[np.float32]  # channels x height x width


def graph_with_output(model: Path, layer: str) -> bytes:
    """The model re-serialised with `layer` as an extra output.

    The pinned SFace file also lists its weights as graph inputs, which stops onnxruntime from
    constant-folding them; inputs that are initializers are dropped on the way. Built once and kept
    in the model cache (renlian.models.derived).
    """
    import onnx

    graph = onnx.load(str(model))
    weights = {initializer.name for initializer in graph.graph.initializer}
    inputs = [value for value in graph.graph.input if value.name not in weights]
    del graph.graph.input[:]
    graph.graph.input.extend(inputs)
    graph.graph.output.append(onnx.helper.make_tensor_value_info(layer, onnx.TensorProto.FLOAT, None))
    serialised: bytes = graph.SerializeToString()
    return serialised


class FeatureNet:
    """One recognition network returning its raw embedding and its feature map for an aligned crop.

    The service's embedder runs through this same session (recognizer.Embedder), so each network is
    loaded once and one pass serves both recognition and attributes.
    """

    def __init__(self, name: str, model: Path, *, threads: int) -> None:
        self._scaling = EMBEDDER_INPUTS[name]
        layer = FEATURE_LAYERS[name]
        graph = derived_graph(model, f"output-{layer}", lambda source: graph_with_output(source, layer))
        self._session = model_session_from_bytes(graph, threads)
        self._input = self._session.get_inputs()[0].name
        self.embedding_dim: int = self._session.get_outputs()[0].shape[-1]

    def __call__(self, aligned: BGRImage) -> tuple[NDArray[np.float32], FeatureMap]:
        rgb = aligned[:, :, ::-1].astype(np.float32)
        blob = ((rgb - self._scaling.mean) / self._scaling.std).transpose(2, 0, 1)[None]
        embedding, feature_map = self._session.run(None, {self._input: blob})
        return np.asarray(embedding[0], np.float32), np.asarray(feature_map[0], np.float32)


def pool(maps: FeatureMap) -> NDArray[np.float32]:
    """Global mean, then the four quadrant means: 5 x channels values that keep the coarse layout."""
    half = GRID // 2
    parts = [maps.mean(axis=(1, 2))]
    for rows in (slice(0, half), slice(half, GRID)):
        for cols in (slice(0, half), slice(half, GRID)):
            parts.append(maps[:, rows, cols].mean(axis=(1, 2)))
    return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class FaceFeatures:
    """Both networks' maps for one aligned crop, stacked along the channels (1536 x 7 x 7), and their
    raw embeddings by network name."""

    maps: FeatureMap
    embeddings: dict[str, NDArray[np.float32]]

    def pooled(self) -> NDArray[np.float32]:
        return pool(self.maps)

    def region(self, cells: tuple[tuple[int, int], ...]) -> NDArray[np.float32]:
        """The mean over some grid cells (row, column): what the network saw of one part of the face."""
        rows, cols = zip(*cells, strict=True)
        values: NDArray[np.float32] = self.maps[:, list(rows), list(cols)].mean(axis=1).astype(np.float32)
        return values


class FeatureBackbone:
    def __init__(self, sface: Path, mbf: Path, *, threads: int) -> None:
        self.nets = {
            "sface": FeatureNet("sface", sface, threads=threads),
            "mbf": FeatureNet("mbf", mbf, threads=threads),
        }

    def __call__(self, aligned: BGRImage) -> FaceFeatures:
        outputs = {name: net(aligned) for name, net in self.nets.items()}
        return FaceFeatures(
            np.concatenate([feature_map for _, feature_map in outputs.values()], axis=0),
            {name: embedding for name, (embedding, _) in outputs.items()},
        )
