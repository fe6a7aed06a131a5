"""Podman for the container tests: the tools, a containers.conf of the tests' own, the Debian base
image made from Debian's packages, the images built from the repository, and podman-compose.

Debian 12's podman (4.3) as root, as CI runs: the runc runtime, cgroupfs (there is no systemd to
manage cgroups), no default ulimits (runc may not raise them in this sandbox: "error setting
rlimit type 7: operation not permitted"), and host networking, so that every request the tests
make goes to 127.0.0.1. None of it changes the machine's own configuration: CONTAINERS_CONF points
every podman call made here at the file this module writes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
RENLIAN_IMAGE = "localhost/renlian:latest"
POSTGRES_IMAGE = "localhost/renlian-postgres:latest"
HAPROXY_IMAGE = "localhost/renlian-haproxy:latest"
# (image, context, Containerfile): the names compose.yaml and compose.fleet.yaml run.
IMAGES = (
    (RENLIAN_IMAGE, ROOT, ROOT / "Containerfile"),
    (POSTGRES_IMAGE, ROOT / "containers/postgres", ROOT / "containers/postgres/Containerfile"),
    (HAPROXY_IMAGE, ROOT / "containers/haproxy", ROOT / "containers/haproxy/Containerfile"),
)
# A base image older than this is made again, so that the cached one picks up Debian's updates.
BASE_MAX_AGE = timedelta(days=14)
# Debian package for each command the tests run.
PACKAGES = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}

CONTAINERS_CONF = """\
# Written by tests/container/engine.py for its own podman calls (CONTAINERS_CONF).
[containers]
default_ulimits = []
netns = "host"

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""


def unavailable(message: str) -> NoReturn:
    """Containers cannot be built or run here: in CI a failure that says why, elsewhere a skip."""
    message = f"container tests cannot run: {message}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_packages() -> None:
    """podman, runc and mmdebstrap from Debian's archive where missing (as root, as CI runs)."""
    missing = sorted({package for command, package in PACKAGES.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        unavailable(f"{', '.join(missing)} not installed, and installing needs root (apt-get install)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another test run may hold dpkg's lock: wait for it rather than fail.
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for command in (
        ["apt-get", *lock, "update", "-qq"],
        ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
        if result.returncode != 0:
            unavailable(f"`{' '.join(command)}` failed: {result.stderr.strip()[-1500:]}")


class Podman:
    """podman and podman-compose with the tests' containers.conf."""

    def __init__(self, conf_dir: Path) -> None:
        conf = conf_dir / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env or self.env),
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args[:3])} exited {result.returncode}:\n{result.stderr[-3000:]}"
            )
        return result

    def compose(self, project: str, file: str, *args: str, env: Mapping[str, str], check: bool = True) -> str:
        """podman-compose (the venv's, from PyPI: Debian 12's 1.0.3 cannot run host networking)."""
        result = subprocess.run(
            [sys.executable, "-m", "podman_compose", "-p", project, "-f", str(ROOT / file), *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env={**self.env, **env},
            check=False,
        )
        if check and result.returncode != 0:
            # Its standard output names containers only; the error stream can echo a failing
            # podman command line, environment included, so keep what is shown short.
            raise AssertionError(
                f"podman-compose {' '.join(args)} exited {result.returncode}:\n{result.stderr[-2000:]}"
            )
        return result.stdout

    def image_id(self, image: str) -> str | None:
        result = self.run("image", "inspect", "--format", "{{.Id}}", image, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.run(kind, "inspect", name).stdout)
        return found[0]

    def health(self, container: str) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK, run now. podman 4.3 schedules health checks with systemd timers,
        and there is no systemd here, so nothing runs them by itself."""
        return self.run("healthcheck", "run", container, check=False, timeout=30)


def ensure_base_image(podman: Podman) -> str:
    """The base image: the public one if it was pulled, one made here by an earlier run while it is
    recent, else a new one made with mmdebstrap. Says which."""
    template = '{{.Created.Unix}} {{index .Labels "org.renlian.base-image"}}'
    found = podman.run("image", "inspect", "--format", template, BASE_IMAGE, check=False)
    if found.returncode == 0:
        created, _, label = found.stdout.strip().partition(" ")
        if label != "mmdebstrap":
            return "present (not made here)"
        if time.time() - int(created) < BASE_MAX_AGE.total_seconds():
            return "cached"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts/debian-base-image"), BASE_IMAGE],
        capture_output=True,
        text=True,
        env=podman.env,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        unavailable(f"mmdebstrap could not make {BASE_IMAGE}: {result.stderr.strip()[-2000:]}")
    return "made with mmdebstrap"


def check_runs(podman: Podman) -> None:
    """One container started and stopped: where podman cannot (no namespaces, a runtime that the
    sandbox refuses), the message says what podman said."""
    result = podman.run("run", "--rm", BASE_IMAGE, "true", check=False, timeout=120)
    if result.returncode != 0:
        unavailable(f"podman cannot run a container here: {result.stderr.strip()[-1500:]}")


def pip_cert() -> Path | None:
    """The CA bundle that this machine's pip trusts (its package index may sit behind a TLS proxy),
    handed to the image build as a build secret: it never lands in a layer."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build(podman: Podman, image: str, context: Path, containerfile: Path) -> None:
    """podman build with host networking and the docker format (which keeps HEALTHCHECK). Layers
    stay cached between runs; the image this build replaces is removed."""
    before = podman.image_id(image)
    args = ["build", "--network", "host", "--format", "docker", "-t", image, "-f", str(containerfile)]
    cert = pip_cert()
    if cert is not None:
        args += ["--secret", f"id=pip-cert,src={cert}"]
    result = podman.run(*args, str(context), check=False, timeout=1500)
    if result.returncode != 0:
        raise AssertionError(f"building {image} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    after = podman.image_id(image)
    if before and before != after:
        # Still used by a container of another test run: that run's clean-up leaves it dangling.
        podman.run("rmi", before, check=False)


def wait_healthy(url: str, timeout: float) -> float:
    """Seconds until GET url answers 200."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")
