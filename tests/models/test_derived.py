import hashlib
import os
from pathlib import Path

from renlian.models.derived import derived_graph


class Builder:
    """Counts its calls: whether a graph came from the cache or was built."""

    def __init__(self, output: bytes) -> None:
        self.output = output
        self.calls = 0

    def __call__(self, source: Path) -> bytes:
        self.calls += 1
        return self.output + source.read_bytes()


def kept(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.name != "model.onnx")


def test_built_once_then_read_from_the_cache(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"weights")
    source.chmod(0o644)
    build = Builder(b"edited:")
    assert derived_graph(source, "edit", build) == b"edited:weights"
    assert derived_graph(source, "edit", build) == b"edited:weights"
    assert build.calls == 1
    # As readable as the model it came from, for a service user other than the one that fetched it.
    assert [path.stat().st_mode & 0o777 for path in kept(tmp_path)] == [0o644]
    # Another edit of the same model is another graph.
    assert derived_graph(source, "other", Builder(b"other:")) == b"other:weights"
    assert len(kept(tmp_path)) == 2


def test_a_new_source_file_is_a_new_graph(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"weights")
    derived_graph(source, "edit", Builder(b"edited:"))
    source.write_bytes(b"new weights")
    os.utime(source, ns=(1, 1))
    assert derived_graph(source, "edit", Builder(b"edited:")) == b"edited:new weights"


def test_a_damaged_copy_is_built_again(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"weights")
    derived_graph(source, "edit", Builder(b"edited:"))
    (copy,) = kept(tmp_path)
    copy.write_bytes(b"edited:weightz")
    build = Builder(b"edited:")
    assert derived_graph(source, "edit", build) == b"edited:weights"
    assert build.calls == 1
    (copy,) = kept(tmp_path)
    assert copy.read_bytes() == b"edited:weights"


def test_a_cache_that_cannot_keep_it_builds_it_each_time(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"weights")
    build = Builder(b"edited:")
    derived_graph(source, "edit", build)
    (copy,) = kept(tmp_path)
    # A directory where the file would go: the rename fails as on a read-only cache (the tests run
    # as root, whom file modes do not stop).
    copy.unlink()
    copy.mkdir()
    (copy / "x").write_bytes(b"")
    assert hashlib.sha256(b"edited:weights").hexdigest()[:16] in copy.name
    assert derived_graph(source, "edit", build) == b"edited:weights"
    assert derived_graph(source, "edit", build) == b"edited:weights"
    assert build.calls == 3
    assert [path.name for path in kept(tmp_path)] == [copy.name]
