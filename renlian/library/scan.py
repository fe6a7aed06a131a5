"""The first pass: every row's score from int8 codes, through onnxruntime's integer matrix product.

numpy multiplies integer matrices without SIMD or BLAS, so the product runs in a five-node ONNX graph
built here: MatMulInteger (MLAS's u8 x s8 kernels) on a probe's offset codes (1 x dim, uint8) and a
block of gallery codes stored transposed (dim x n, int8), minus each row's offset sum, as float32,
times each row's scale and the probe's step. A probe is one row of the product: MLAS multiplies a
single row by a matrix it has not packed beforehand several times faster than it multiplies two or
more (measured on two AVX2 cores: 8 ms for 300,000 x 512 against 60-70 ms for 2 to 10 rows), so
several probes run one by one over each block while that block is in cache.

The integers are exact: the self-check below runs the worst case for saturation (docs/library.md)
on the kernel this machine selects and refuses to start on a kernel that gets it wrong.
"""

from __future__ import annotations

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper

from renlian.library.bound import QUERY_LEVELS, QUERY_OFFSET, ROW_LEVELS
from renlian.models.runtime import onnx_session_from_bytes


def _graph() -> bytes:
    def tensor(name: str, kind: int, shape: list[int | str]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, kind, shape)

    nodes = [
        helper.make_node("MatMulInteger", ["probe", "codes"], ["dot"]),
        helper.make_node("Sub", ["dot", "offset_sum"], ["centred"]),
        helper.make_node("Cast", ["centred"], ["dot_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["scale", "step"], ["unit"]),
        helper.make_node("Mul", ["dot_f", "unit"], ["score"]),
        helper.make_node("TopK", ["score", "k"], ["top_score", "top_row"]),
    ]
    graph = helper.make_graph(
        nodes,
        "first_pass",
        [
            tensor("probe", TensorProto.UINT8, [1, "dim"]),
            tensor("codes", TensorProto.INT8, ["dim", "n"]),
            tensor("offset_sum", TensorProto.INT32, ["n"]),
            tensor("scale", TensorProto.FLOAT, ["n"]),
            tensor("step", TensorProto.FLOAT, []),
            tensor("k", TensorProto.INT64, [1]),
        ],
        [
            tensor("score", TensorProto.FLOAT, [1, "n"]),
            tensor("top_score", TensorProto.FLOAT, [1, "k"]),
            tensor("top_row", TensorProto.INT64, [1, "k"]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class FirstPass:
    """One session for every group of the process (runs from several threads are safe)."""

    def __init__(self, threads: int) -> None:
        self._session = onnx_session_from_bytes(_graph(), threads)
        self._self_check()

    def scores(
        self,
        probe: NDArray[np.uint8],
        step: np.float32,
        codes: NDArray[np.int8],
        offset_sum: NDArray[np.int32],
        scale: NDArray[np.float32],
        top: int = 1,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """s t (c . b) for every column of `codes` (dim x n): the probe's score from codes alone;
        and the columns of the `top` best of them (a selection inside the graph costs far less
        than numpy's argpartition over the whole group afterwards)."""
        feed = {
            "probe": probe,
            "codes": codes,
            "offset_sum": offset_sum,
            "scale": scale,
            "step": np.asarray(step, np.float32),
            "k": np.array([min(top, codes.shape[1])], np.int64),
        }
        score, _, rows = self._session.run(None, feed)
        return score[0], rows[0]

    def _self_check(self) -> None:
        """The extreme codes, where a saturating kernel would go wrong first, and random ones."""
        dim, rng = 512, np.random.default_rng(0)
        low, high = QUERY_OFFSET - QUERY_LEVELS, QUERY_OFFSET + QUERY_LEVELS
        probes = [np.full(dim, high), np.full(dim, low), rng.integers(low, high + 1, dim)]
        codes = np.stack(
            [
                np.full(dim, ROW_LEVELS),
                np.full(dim, -ROW_LEVELS),
                np.resize([ROW_LEVELS, -ROW_LEVELS], dim),
                *rng.integers(-ROW_LEVELS, ROW_LEVELS + 1, (13, dim)),
            ]
        ).astype(np.int8)
        columns = np.ascontiguousarray(codes.T)
        for probe in probes:
            expected = probe.astype(np.int64) @ codes.T.astype(np.int64)
            got, _ = self.scores(
                probe.astype(np.uint8)[None, :],
                np.float32(1),
                columns,
                np.zeros(len(codes), np.int32),
                np.ones(len(codes), np.float32),
            )
            if not np.array_equal(got.astype(np.int64), expected):
                raise RuntimeError("onnxruntime's integer matrix product is not exact on this machine")
