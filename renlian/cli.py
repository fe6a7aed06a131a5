"""The `renlian` command: serve, models fetch, models list."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from renlian.models.cache import ModelCache, ModelCacheError
from renlian.models.registry import MODELS, models_for
from renlian.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    """Environment first, then whatever flags were given on the command line."""
    overrides = {
        key: value for key, value in vars(args).items() if key in Settings.model_fields and value is not None
    }
    return Settings(**overrides)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from renlian.api.app import create_app
    from renlian.vision.analyzer import AnalyzerConfig, load_analyzer

    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cache = ModelCache(settings.model_cache())
    # Fetch before the server starts, so a missing or corrupt model is a clear message and an exit
    # code, not a traceback from inside the lifespan.
    try:
        cache.ensure(models_for(settings.recognizer), progress=sys.stderr.isatty())
    except ModelCacheError as exc:
        print(f"renlian: {exc}", file=sys.stderr)
        return 2
    config = AnalyzerConfig(
        recognizer=settings.recognizer,
        threads=settings.threads_per_worker,
        detect_max_side=settings.detect_max_side,
        detect_score_threshold=settings.detect_score_threshold,
    )
    app = create_app(settings, lambda: load_analyzer(cache, config))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
    return 0


def models_fetch(args: argparse.Namespace) -> int:
    settings = _settings(args)
    cache = ModelCache(settings.model_cache())
    try:
        paths = cache.ensure(MODELS.values(), wheel_dir=args.wheel_dir, progress=True)
    except ModelCacheError as exc:
        print(f"renlian: {exc}", file=sys.stderr)
        return 2
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
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
