import onnx

from renlian.library.scan import GRAPH, build_graph


def test_the_committed_first_pass_graph_is_what_the_code_builds() -> None:
    # Compared as parsed graphs, not bytes: another onnx release may order or stamp fields apart.
    assert onnx.load_from_string(GRAPH.read_bytes()) == onnx.load_from_string(build_graph())


def test_a_changed_graph_is_seen() -> None:
    changed = onnx.load_from_string(build_graph())
    changed.graph.node[-1].op_type = "ArgMax"
    assert onnx.load_from_string(GRAPH.read_bytes()) != changed
