"""Face embeddings: align five points to the ArcFace template, run the embedder, L2-normalise.

Both pinned embedders take 112x112 RGB crops aligned to the same template; they differ in input
scaling and in output size (mbf 512-d, SFace 128-d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from renlian.vision.crop import similarity_to, warp
from renlian.vision.faces import Points
from renlian.vision.image import BGRImage

if TYPE_CHECKING:
    from renlian.vision.backbone import FeatureNet

ALIGNED_SIZE = 112
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)

Embedding = NDArray[np.float32]


@dataclass(frozen=True)
class EmbedderInput:
    """How an embedder wants its pixels: (x - mean) / std on RGB."""

    mean: float
    std: float


EMBEDDER_INPUTS = {"mbf": EmbedderInput(127.5, 127.5), "sface": EmbedderInput(0.0, 1.0)}
# Each recognizer's embedding size, known before its model is loaded: the server loads the search
# index while the models load (library.load_index), and the Embedder checks the model agrees.
EMBEDDING_DIMS = {"mbf": 512, "sface": 128}


def align(image: BGRImage, kps5: Points) -> BGRImage:
    """The 112x112 crop that puts the five points where the embedders were trained to see them."""
    return warp(image, similarity_to(kps5, ARCFACE_TEMPLATE), ALIGNED_SIZE)


class Embedder:
    """The configured recognizer's L2-normalised embedding, through the attribute backbone's session
    for that network (loaded once for both uses)."""

    def __init__(self, name: str, net: FeatureNet) -> None:
        self.name = name
        self._net = net
        self.dim = net.embedding_dim
        if self.dim != EMBEDDING_DIMS[name]:
            raise ValueError(f"{name} embeds in {self.dim} dimensions, not {EMBEDDING_DIMS[name]}")

    def embed(self, aligned: BGRImage) -> Embedding:
        return normalised(self._net(aligned)[0])


def normalised(vector: NDArray[np.float32]) -> Embedding:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
