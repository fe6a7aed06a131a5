"""How model files become runnable sessions, with explicit thread counts.

onnxruntime and OpenCV each default to one thread per core. Several requests running at once would
then start cores x requests threads and thrash; instead every session gets `threads` intra-op
threads and the inference pool decides how many run at once.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import onnxruntime as ort


def onnx_session(path: Path, threads: int) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), sess_options=_options(threads), providers=["CPUExecutionProvider"])


def onnx_session_from_bytes(model: bytes, threads: int) -> ort.InferenceSession:
    """A session over a graph edited in memory (e.g. with extra outputs), with the same settings."""
    return ort.InferenceSession(model, sess_options=_options(threads), providers=["CPUExecutionProvider"])


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
