"""Which onnxruntime provider runs the models: the choice, and the fall-back to the CPU without a GPU."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import onnx
import onnxruntime as ort
import pytest
from pydantic import ValidationError

from renlian.models.runtime import (
    CPU,
    CUDA,
    model_session_from_bytes,
    onnx_session_from_bytes,
    providers_for,
    use_execution_provider,
)
from renlian.settings import Settings


def _identity_graph() -> bytes:
    value = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    output = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [value], [output])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    serialised: bytes = model.SerializeToString()
    return serialised


@pytest.fixture
def cuda_wanted() -> Iterator[None]:
    use_execution_provider("cuda")
    yield
    use_execution_provider("cpu")


def test_cpu_is_chosen_even_where_cuda_is_available() -> None:
    assert providers_for("cpu", [CUDA, CPU]) == [CPU]


def test_cuda_comes_first_with_the_cpu_behind_it_when_the_build_has_it() -> None:
    assert providers_for("cuda", ["TensorrtExecutionProvider", CUDA, CPU]) == [CUDA, CPU]


def test_cuda_without_the_gpu_build_falls_back_to_the_cpu_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="renlian"):
        assert providers_for("cuda", [CPU]) == [CPU]
    assert "onnxruntime-gpu" in caplog.text


def test_a_model_session_asked_for_cuda_runs_on_what_this_machine_has(cuda_wanted: None) -> None:
    session = model_session_from_bytes(_identity_graph(), 1)
    if CUDA not in ort.get_available_providers():
        assert session.get_providers() == [CPU]
    assert session.run(None, {"x": [2.5]})[0].tolist() == [2.5]


def test_the_search_pass_stays_on_the_cpu_whatever_the_models_use(cuda_wanted: None) -> None:
    assert onnx_session_from_bytes(_identity_graph(), 1).get_providers() == [CPU]


def test_the_setting_defaults_to_the_cpu_and_reaches_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENLIAN_EXECUTION_PROVIDER", raising=False)
    assert Settings().analyzer_config().execution_provider == "cpu"
    monkeypatch.setenv("RENLIAN_EXECUTION_PROVIDER", "cuda")
    assert Settings().analyzer_config().execution_provider == "cuda"
    monkeypatch.setenv("RENLIAN_EXECUTION_PROVIDER", "tpu")
    with pytest.raises(ValidationError):
        Settings()
