"""The first pass: every row's score from int8 codes, for every probe of a request at once, through
onnxruntime's integer matrix product.

numpy multiplies integer matrices without SIMD or BLAS, so the product runs in a small ONNX graph
built here: MatMulInteger (MLAS's u8 x s8 kernels) of a block of gallery codes (n x dim, uint8, each
code offset by 128, which the product takes off as the left operand's zero point) by the probes'
codes (dim x P, int8), as float32, times each row's scale and each probe's step, then each probe's
best rows (TopK). The gallery is the left operand: MLAS packs the right one on every call, and the
probes' few hundred bytes cost nothing to pack, where packing the gallery's codes (the other way
round) cost more than the product itself: on two Intel Xeon cores (AVX-512 VNNI) a whole search of
300,000 faces took 28 ms of CPU and ten probes 51 ms, against 129 ms and 1,071 ms with the probe on
the left (bench.library, docs/benchmarks.md).

The integers are exact: the self-check below runs the worst case for saturation (docs/library.md)
on the kernel this machine selects and refuses to start on a kernel that gets it wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from renlian.library.bound import QUERY_LEVELS, ROW_LEVELS, ROW_OFFSET
from renlian.models.runtime import onnx_session_from_bytes

# build_graph()'s output, committed: loading it needs no onnx package, whose import would cost a
# start about 0.6 s of CPU (renlian.models.derived). tests/library/test_scan.py checks that the two
# agree; `python -m renlian.library.scan` writes it again.
GRAPH = Path(__file__).with_name("first_pass.onnx")


def build_graph() -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def tensor(name: str, kind: int, shape: list[int | str]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, kind, shape)

    nodes = [
        helper.make_node("MatMulInteger", ["codes", "probes", "offset"], ["centred"]),
        helper.make_node("Transpose", ["centred"], ["by_probe"], perm=[1, 0]),
        helper.make_node("Cast", ["by_probe"], ["dot_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["scale", "step"], ["unit"]),
        helper.make_node("Mul", ["dot_f", "unit"], ["score"]),
        helper.make_node("TopK", ["score", "k"], ["top_score", "top_row"]),
    ]
    graph = helper.make_graph(
        nodes,
        "first_pass",
        [
            tensor("codes", TensorProto.UINT8, ["n", "dim"]),
            tensor("probes", TensorProto.INT8, ["dim", "p"]),
            tensor("scale", TensorProto.FLOAT, ["n"]),
            tensor("step", TensorProto.FLOAT, ["p", 1]),
            tensor("k", TensorProto.INT64, [1]),
        ],
        [
            tensor("score", TensorProto.FLOAT, ["p", "n"]),
            tensor("top_score", TensorProto.FLOAT, ["p", "k"]),
            tensor("top_row", TensorProto.INT64, ["p", "k"]),
        ],
        [numpy_helper.from_array(np.array(ROW_OFFSET, np.uint8), "offset")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class Probes:
    """The codes of a request's probes as the first pass takes them (bound.code_query's, stacked)."""

    def __init__(self, codes: list[NDArray[np.int8]], steps: list[np.float32]) -> None:
        self.codes = np.ascontiguousarray(np.stack(codes, axis=1), np.int8)  # dim x P
        self.step = np.array(steps, np.float32)[:, None]


class FirstPass:
    """One session for every group of the process (runs from several threads are safe)."""

    def __init__(self, threads: int) -> None:
        self._session = onnx_session_from_bytes(GRAPH.read_bytes(), threads)
        self._self_check()

    def scores(
        self, probes: Probes, codes: NDArray[np.uint8], scale: NDArray[np.float32], top: int = 1
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """s t (c . b) for every row of `codes` (n x dim, c + 128) and every probe: P x n, each
        probe's score of each row from codes alone; and the rows of each probe's `top` best (P x
        top: a selection inside the graph costs far less than numpy's argpartition afterwards)."""
        feed = {
            "codes": codes,
            "probes": probes.codes,
            "scale": scale,
            "step": probes.step,
            "k": np.array([min(top, codes.shape[0])], np.int64),
        }
        score, _, rows = self._session.run(None, feed)
        return score, rows

    def _self_check(self) -> None:
        """The extreme codes, where a saturating kernel would go wrong first, and random ones."""
        dim, rng = 512, np.random.default_rng(0)
        probes = np.stack(
            [
                np.full(dim, QUERY_LEVELS),
                np.full(dim, -QUERY_LEVELS),
                np.resize([QUERY_LEVELS, -QUERY_LEVELS], dim),
                rng.integers(-QUERY_LEVELS, QUERY_LEVELS + 1, dim),
            ]
        ).astype(np.int8)
        codes = np.stack(
            [
                np.full(dim, ROW_LEVELS),
                np.full(dim, -ROW_LEVELS),
                np.resize([ROW_LEVELS, -ROW_LEVELS], dim),
                np.resize([-ROW_LEVELS, ROW_LEVELS], dim),
                *rng.integers(-ROW_LEVELS, ROW_LEVELS + 1, (13, dim)),
            ]
        ).astype(np.int8)
        expected = codes.astype(np.int64) @ probes.T.astype(np.int64)
        got, _ = self.scores(
            Probes(list(probes), [np.float32(1)] * len(probes)),
            offset_codes(codes),
            np.ones(len(codes), np.float32),
        )
        if not np.array_equal(got.astype(np.int64), expected.T):
            raise RuntimeError("onnxruntime's integer matrix product is not exact on this machine")


def offset_codes(codes: NDArray[np.int8]) -> NDArray[np.uint8]:
    """c + 128 as uint8 (flipping the sign bit of two's complement): how rows are kept."""
    return np.bitwise_xor(codes.view(np.uint8), np.uint8(ROW_OFFSET))


if __name__ == "__main__":
    GRAPH.write_bytes(build_graph())
