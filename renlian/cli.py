"""The `renlian` command: serve, import, backup, reindex, models fetch, models list."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from renlian.api.deps import DEFAULT_APP_ID
from renlian.errors import FaceApiError
from renlian.library.importer import import_tree
from renlian.library.library import FaceLibrary, parse_groups
from renlian.models.cache import ModelCache, ModelCacheError
from renlian.models.registry import MODELS, models_for
from renlian.settings import Settings
from renlian.store.sqlite import SQLiteStore
from renlian.vision.analyzer import AnalyzerConfig, FaceAnalyzer, load_analyzer
from renlian.vision.image import ImageLimits


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit code 2, no traceback."""


def _settings(args: argparse.Namespace) -> Settings:
    """Environment first, then whatever flags were given on the command line."""
    overrides = {
        key: value for key, value in vars(args).items() if key in Settings.model_fields and value is not None
    }
    return Settings(**overrides)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _analyzer_loader(settings: Settings) -> Callable[[], FaceAnalyzer]:
    """Fetch missing models now, so that a missing or corrupt one is a clear message and an exit
    code rather than a traceback from inside a server's start-up; load them when called."""
    cache = ModelCache(settings.model_cache())
    try:
        cache.ensure(models_for(settings.recognizer), progress=sys.stderr.isatty())
    except ModelCacheError as exc:
        raise CommandError(str(exc)) from exc
    config = AnalyzerConfig(
        recognizer=settings.recognizer,
        threads=settings.threads_per_worker,
        detect_max_side=settings.detect_max_side,
        detect_score_threshold=settings.detect_score_threshold,
    )
    return lambda: load_analyzer(cache, config)


def _library(settings: Settings) -> FaceLibrary:
    return FaceLibrary(SQLiteStore(settings.store_path()), _analyzer_loader(settings)())


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from renlian.api.app import create_app

    settings = _settings(args)
    _logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, _analyzer_loader(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
    return 0


def import_photos(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    try:
        groups = parse_groups(args.group)
    except FaceApiError as exc:
        raise CommandError(f"--group: {exc.detail}") from exc
    if len(groups) != 1:
        raise CommandError("--group takes one group")
    if not args.folder.is_dir():
        raise CommandError(f"{args.folder} is not a folder")
    library = _library(settings)
    limits = ImageLimits(settings.max_image_pixels, settings.max_image_side, settings.min_image_side)
    report = import_tree(
        library,
        DEFAULT_APP_ID,
        groups[0],
        args.folder,
        limits,
        workers=settings.inference_workers,
        progress=True,
    )
    library.store.close()
    print(f"enrolled {report.enrolled}, already there {report.skipped}, failed {len(report.failed)}")
    for path, reason in report.failed:
        print(f"failed: {path}: {reason}")
    return 1 if report.failed else 0


def backup(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.store_path().is_file():
        raise CommandError(f"no store at {settings.store_path()}")
    if args.target.exists():
        raise CommandError(f"{args.target} exists; choose a new path")
    store = SQLiteStore(settings.store_path())
    store.backup(str(args.target))
    store.close()
    print(f"backed up {settings.store_path()} to {args.target}")
    return 0


def reindex(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    library = _library(settings)
    done = library.reindex()
    library.store.close()
    print(f"re-embedded {done} faces with {settings.recognizer}")
    return 0


def models_fetch(args: argparse.Namespace) -> int:
    settings = _settings(args)
    cache = ModelCache(settings.model_cache())
    try:
        paths = cache.ensure(MODELS.values(), wheel_dir=args.wheel_dir, progress=True)
    except ModelCacheError as exc:
        raise CommandError(str(exc)) from exc
    for name, path in paths.items():
        print(f"{name:12} {path}")
    return 0


def models_list(args: argparse.Namespace) -> int:
    cache = ModelCache(_settings(args).model_cache())
    for spec in MODELS.values():
        state = "ok" if cache.is_valid(spec) else "missing"
        print(f"{spec.name:12} {state:8} {spec.wheel.requirement:28} {spec.purpose}; licence: {spec.licence}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="renlian", description="Self-hosted Baidu Face API v2 server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="start the HTTP server")
    serve_parser.add_argument("--host", help="address to bind (RENLIAN_HOST, default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to bind (RENLIAN_PORT, default 8000)")
    serve_parser.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    serve_parser.set_defaults(handler=serve)

    importing = commands.add_parser("import", help="enrol a folder per user of photos into a group")
    importing.add_argument("folder", type=Path, help="a folder holding one sub-folder of photos per uid")
    importing.add_argument("--group", required=True, help="the group_id to enrol into")
    importing.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    importing.set_defaults(handler=import_photos)

    backing_up = commands.add_parser("backup", help="copy the live store consistently to a new file")
    backing_up.add_argument("target", type=Path)
    backing_up.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    backing_up.set_defaults(handler=backup)

    reindexing = commands.add_parser("reindex", help="re-embed faces made by another recognizer")
    reindexing.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    reindexing.set_defaults(handler=reindex)

    models = commands.add_parser("models", help="manage the model cache (RENLIAN_MODEL_DIR)")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = model_commands.add_parser("fetch", help="download and verify every model")
    fetch.add_argument("--wheel-dir", type=Path, help="take the pinned wheels from this folder, offline")
    fetch.set_defaults(handler=models_fetch)
    listing = model_commands.add_parser("list", help="show each model, its state and licence")
    listing.set_defaults(handler=models_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except CommandError as exc:
        print(f"renlian: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
