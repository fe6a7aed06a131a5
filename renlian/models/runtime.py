"""How model files become runnable sessions, with explicit thread counts.

onnxruntime and OpenCV each default to one thread per core. Several requests running at once would
then start cores x requests threads and thrash; instead every session gets `threads` intra-op
threads and the inference pool decides how many run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import onnxruntime as ort

logger = logging.getLogger("renlian")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
ExecutionProvider = Literal["cpu", "cuda"]


def providers_for(wanted: ExecutionProvider, available: Sequence[str]) -> list[str]:
    """onnxruntime's provider list for the models, given the providers this onnxruntime build has.

    "cuda" needs the onnxruntime-gpu package (whose build lists the CUDA provider); without it the
    models run on the CPU, with a warning, rather than the server refusing to start. CPU stays last
    in the list: onnxruntime runs any node the CUDA provider cannot on it.
    """
    if wanted == "cuda":
        if CUDA in available:
            return [CUDA, CPU]
        logger.warning(
            "RENLIAN_EXECUTION_PROVIDER=cuda, but this onnxruntime has no CUDA provider "
            "(install onnxruntime-gpu instead of onnxruntime): the models run on the CPU"
        )
    return [CPU]


class _Providers:
    """The models' providers, set once at load (use_execution_provider); the CPU until then."""

    def __init__(self) -> None:
        self.chosen = [CPU]
        self.warned = False
        self.lock = threading.Lock()


_models = _Providers()


def use_execution_provider(wanted: ExecutionProvider) -> None:
    _models.chosen = providers_for(wanted, ort.get_available_providers())


def onnx_session(path: Path, threads: int) -> ort.InferenceSession:
    """A model's session, on the configured execution provider."""
    return _model_session(str(path), threads)


def model_session_from_bytes(model: bytes, threads: int) -> ort.InferenceSession:
    """A model's session over a graph edited in memory (e.g. with extra outputs)."""
    return _model_session(model, threads)


def _model_session(model: str | bytes, threads: int) -> ort.InferenceSession:
    session = ort.InferenceSession(model, sess_options=_options(threads), providers=_models.chosen)
    if _models.chosen[0] != CPU and session.get_providers()[0] == CPU:
        # onnxruntime-gpu falls back to the CPU on its own when it finds no GPU or CUDA libraries.
        with _models.lock:
            if not _models.warned:
                _models.warned = True
                logger.warning(
                    "the CUDA provider could not start (no GPU or CUDA libraries?): the models run on the CPU"
                )
    return session


def onnx_session_from_bytes(model: bytes, threads: int) -> ort.InferenceSession:
    """A CPU session over a graph edited in memory, with the same settings: for work whose data lives
    in host memory (the search's first pass), where a GPU would copy it on every call."""
    return ort.InferenceSession(model, sess_options=_options(threads), providers=[CPU])


def _options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Some pinned graphs list their weights as inputs; onnxruntime warns once per weight. The
    # warning is harmless and would bury real log lines.
    options.log_severity_level = 3
    # Idle intra-op threads otherwise spin for a while after each run, taking the cores that the
    # next stage (numpy's search, another request's model) needs: measured 177 -> 113 ms for an
    # identify over 300,000 faces on 2 cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def configure_opencv(threads: int) -> None:
    """OpenCV's thread count and log level are process-wide; set them before the first model runs.

    OpenCV 5 warns on every detector it creates that its new graph engine ignores target hints;
    only errors are worth a log line.
    """
    cv2.setNumThreads(threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
