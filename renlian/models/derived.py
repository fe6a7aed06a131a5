"""Graphs derived from the pinned models at load (an extra output, another input), kept beside them.

Editing a graph needs the onnx package, and importing it costs about 0.6 s of CPU (most of it
ml_dtypes' extension), a fifth of a node's start from its own index snapshot (docs/scale-out.md).
So an edited graph is built once, written into the model cache beside its source, and read back as
bytes by every later start, which then never imports onnx. A cache that cannot be written (a
read-only image) costs only that import.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def _stem(source: Path, edit: str) -> str:
    """The kept graph's name up to its checksum. It changes with the source file (its name, size and
    modification time: the cache's files are never rewritten in place, so a new one is a new model)
    and with the edit's name, which its code changes whenever its output would."""
    stat = source.stat()
    identity = f"{source.name}:{stat.st_size}:{stat.st_mtime_ns}:{edit}".encode()
    return f"{source.stem}.{edit}.{hashlib.sha256(identity).hexdigest()[:12]}"


def derived_graph(source: Path, edit: str, build: Callable[[Path], bytes]) -> bytes:
    """The serialised graph `build` makes of `source`: read from the cache when a copy kept there
    still matches the checksum in its name (as the pinned models are checked before every load),
    else built and kept."""
    stem = _stem(source, edit)
    for kept in source.parent.glob(f"{stem}.*.onnx"):
        try:
            graph = kept.read_bytes()
        except OSError:
            continue
        if kept.name == f"{stem}.{hashlib.sha256(graph).hexdigest()[:16]}.onnx":
            return graph
        logger.warning("derived graph %s does not match its checksum: built again", kept)
        kept.unlink(missing_ok=True)
    graph = build(source)
    path = source.with_name(f"{stem}.{hashlib.sha256(graph).hexdigest()[:16]}.onnx")
    temporary: Path | None = None
    try:
        # Written whole under a temporary name, then renamed: a crash or a concurrent start never
        # leaves a partial graph under a name that is read.
        descriptor, name = tempfile.mkstemp(dir=source.parent, prefix=f".{path.name}.")
        temporary = Path(name)
        with os.fdopen(descriptor, "wb") as out:
            out.write(graph)
        # Readable by whoever may read the model (mkstemp makes it the owner's only): in a container
        # image the cache is filled by root and read by the service's own user.
        os.chmod(temporary, source.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        logger.info("could not keep the derived graph %s (%s): it is built at each start", path, error)
    return graph
