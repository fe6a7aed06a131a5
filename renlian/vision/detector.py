"""Face detection with YuNet (OpenCV Zoo), run by onnxruntime, decoded as OpenCV's FaceDetectorYN does.

OpenCV's FaceDetectorYN ran the same graph in 18 ms of CPU for a 640x480 photo where onnxruntime
takes 9 to 11 (bench/profile.py, docs/benchmarks.md), so the network runs in onnxruntime like every
other model and the few lines around it follow FaceDetectorYN's (OpenCV 4.9 to 5.x): the image is
padded right and down to multiples of 32, fed as BGR 0-255, and each stride's cells decoded into a
box and five points, kept where sqrt(cls x obj) reaches the threshold, then non-maximum suppression
on the boxes truncated to integers. The pinned file fixes its input at 640x640; the graph is edited
at load to take any size, since every size the padding makes gives whole cells at each stride.

Large images are shrunk so that the longer side is at most `max_side` before detection, which bounds
the cost of a 12-megapixel photo. One session serves every thread.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.models.derived import derived_graph
from renlian.models.runtime import model_session_from_bytes
from renlian.vision.faces import Face
from renlian.vision.image import BGRImage

STRIDES = (8, 16, 32)
NMS_THRESHOLD = 0.3
TOP_K = 5000
OUTPUTS = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES]


def any_size_graph(model: Path) -> bytes:
    """The graph taking the padded image itself, 8-bit BGR of any height and width (its outputs'
    shapes unstated): the transpose to channels first and the cast to float, which FaceDetectorYN
    makes in its blob, run inside onnxruntime, whose buffers are reused between runs. A 640x480
    float blob made in numpy is a fresh 3.7 MB each request, and the server's mmap threshold
    (cli.py) makes each such array new pages to fault in: about 2 ms of CPU a detection. Built once
    and kept in the model cache (renlian.models.derived)."""
    import onnx

    loaded = onnx.load(str(model))
    graph = loaded.graph
    network_input = graph.input[0].name
    pixels = onnx.helper.make_tensor_value_info("image", onnx.TensorProto.UINT8, [1, "height", "width", 3])
    prologue = [
        onnx.helper.make_node("Transpose", ["image"], ["image_chw"], perm=[0, 3, 1, 2]),
        onnx.helper.make_node("Cast", ["image_chw"], [network_input], to=onnx.TensorProto.FLOAT),
    ]
    nodes = prologue + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(pixels)
    for output in graph.output:
        output.type.tensor_type.shape.ClearField("dim")
    del graph.value_info[:]
    serialised: bytes = loaded.SerializeToString()
    return serialised


class YuNetDetector:
    def __init__(self, model: Path, *, max_side: int, score_threshold: float, threads: int = 1) -> None:
        graph = derived_graph(model, "uint8-any-size", any_size_graph)
        self._session = model_session_from_bytes(graph, threads)
        self._input = self._session.get_inputs()[0].name
        self._max_side = max_side
        self._score_threshold = score_threshold

    def detect(self, image: BGRImage) -> list[Face]:
        """All faces above the score threshold, largest first."""
        height, width = image.shape[:2]
        scale = min(1.0, self._max_side / max(height, width))
        resized = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        rows = self.raw(resized)
        faces = []
        for row in rows:
            values = row[:14] / np.float32(scale)
            faces.append(Face(box=values[:4], score=float(row[14]), kps5=values[4:14].reshape(5, 2)))
        faces.sort(key=lambda face: face.area, reverse=True)
        return faces

    def raw(self, image: BGRImage) -> NDArray[np.float32]:
        """FaceDetectorYN.detect's rows for an image the detector sees as it is: x, y, w, h, five
        points, score."""
        height, width = image.shape[:2]
        padded = image
        if height % 32 or width % 32:
            padded = cv2.copyMakeBorder(image, 0, -height % 32, 0, -width % 32, cv2.BORDER_CONSTANT, value=0)
        feed = np.ascontiguousarray(padded)[np.newaxis]
        outputs = dict(zip(OUTPUTS, self._session.run(OUTPUTS, {self._input: feed}), strict=True))
        found = [self._decode(outputs, stride, padded.shape[1] // stride) for stride in STRIDES]
        rows = np.concatenate(found) if found else np.zeros((0, 15), np.float32)
        if len(rows) <= 1:
            return rows
        boxes = np.trunc(rows[:, :4]).astype(np.int64).tolist()
        keep = cv2.dnn.NMSBoxes(boxes, rows[:, 14].tolist(), self._score_threshold, NMS_THRESHOLD, 1.0, TOP_K)
        return rows[np.asarray(keep, np.int64).reshape(-1)]

    def _decode(self, outputs: dict[str, NDArray[np.float32]], stride: int, cols: int) -> NDArray[np.float32]:
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        scores = np.sqrt(cls * obj)
        cells = np.flatnonzero(scores >= self._score_threshold)
        col = (cells % cols).astype(np.float32)[:, np.newaxis]
        row = (cells // cols).astype(np.float32)[:, np.newaxis]
        step = np.float32(stride)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[cells]
        kps = outputs[f"kps_{stride}"].reshape(-1, 10)[cells]
        centre_x = (col[:, 0] + bbox[:, 0]) * step
        centre_y = (row[:, 0] + bbox[:, 1]) * step
        w = np.exp(bbox[:, 2]) * step
        h = np.exp(bbox[:, 3]) * step
        points = np.empty_like(kps)
        points[:, 0::2] = (kps[:, 0::2] + col) * step
        points[:, 1::2] = (kps[:, 1::2] + row) * step
        decoded = np.column_stack(
            [centre_x - w / np.float32(2), centre_y - h / np.float32(2), w, h, points, scores[cells]]
        )
        return decoded.astype(np.float32)
