"""The `renlian` command: serve, import, backup, migrate, reindex, doctor, apps, models."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from renlian import logs
from renlian.auth.apps import new_app, with_new_secret
from renlian.doctor import checks, problems
from renlian.errors import FaceApiError
from renlian.library.faces import reembed
from renlian.library.ids import parse_groups
from renlian.library.importer import import_tree
from renlian.library.library import FaceLibrary
from renlian.models.cache import ModelCache, ModelCacheError
from renlian.models.registry import MODELS
from renlian.settings import Settings
from renlian.store.base import CAPABILITIES, AppRecord, AppStore, FaceStore
from renlian.store.files import private_dir
from renlian.store.open import open_store
from renlian.store.sqlite import backup_file
from renlian.vision.analyzer import FaceAnalyzer, load_analyzer

# What `renlian apps create` prints: the interface outside checks rely on.
APP_CREATED_FIELDS = ("app_id", "name", "api_key", "secret_key")
# Printed only where the user gets a new secret (`apps create`, `apps rotate-secret`): every other
# command's output ends up in terminals, logs and tickets.
SECRET_FIELDS = ("secret_key",)


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit code 2, no traceback."""


def _settings(args: argparse.Namespace) -> Settings:
    """Environment first, then whatever flags were given on the command line."""
    overrides = {
        key: value for key, value in vars(args).items() if key in Settings.model_fields and value is not None
    }
    return Settings(**overrides)


def _logging(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)


def _analyzer_loader(settings: Settings) -> Callable[[], FaceAnalyzer]:
    """Fetch missing models now, so that a missing or corrupt one is a clear message and an exit
    code rather than a traceback from inside a server's start-up; load them when called."""
    cache = ModelCache(settings.model_cache())
    try:
        cache.ensure(list(MODELS.values()), progress=sys.stderr.isatty())
    except ModelCacheError as exc:
        raise CommandError(str(exc)) from exc
    config = settings.analyzer_config()
    return lambda: load_analyzer(cache, config)


def _store(settings: Settings) -> FaceStore:
    return open_store(settings)[0]


def _library(settings: Settings) -> FaceLibrary:
    # A command only writes: a running server applies its writes from the store's change feed.
    return FaceLibrary(_store(settings), _analyzer_loader(settings)(), searchable=False)


def _return_large_buffers_to_the_os() -> None:
    """Fix glibc's mmap threshold at 1 MiB for the server's life.

    glibc raises the threshold (up to 32 MiB) each time a large block is freed, after which
    request-sized buffers (bodies, image texts, base64-decoded files) come from its heaps, stay
    there when freed, and fragment them across threads. Fixed, each such buffer is its own mapping,
    handed back to the system when the request ends: 16 concurrent worst-case requests peaked at
    708 MiB instead of 909 MiB (bench/memory.py, docs/benchmarks.md). Not glibc: nothing to do.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_mmap_threshold = -3
    libc.mallopt(m_mmap_threshold, 1024 * 1024)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    _return_large_buffers_to_the_os()

    from renlian.api.app import create_app

    settings = _settings(args)
    _logging(settings)
    private_dir(settings.data_dir)
    app = create_app(settings, _analyzer_loader(settings))
    # uvicorn shuts down gracefully on SIGTERM (stops accepting, finishes what is in flight, runs
    # the app's shutdown), then raises the signal again with the handler that was there before it;
    # this one makes that a clean exit 0 instead of death by signal.
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
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
    with _app_store(settings) as apps:
        app_id = _existing_app(apps, settings, args.app).app_id
    # A batch wants throughput, not latency: one photo per core at a time, one thread each.
    settings = settings.model_copy(update={"threads_per_worker": 1, "inference_workers": os.cpu_count() or 1})
    library = _library(settings)
    limits = settings.image_limits()
    report = import_tree(
        library,
        app_id,
        groups[0],
        args.folder,
        limits,
        workers=settings.inference_workers,
        progress=True,
    )
    library.close()
    library.store.close()
    print(f"enrolled {report.enrolled}, already there {report.skipped}, failed {len(report.failed)}")
    for path, reason in report.failed:
        print(f"failed: {path}: {reason}")
    return 1 if report.failed else 0


@contextmanager
def _app_store(settings: Settings) -> Iterator[AppStore]:
    store, apps = open_store(settings)
    try:
        yield apps
    finally:
        store.close()


def _existing_app(apps: AppStore, settings: Settings, app_id: str) -> AppRecord:
    app = apps.app(app_id)
    if app is None:
        raise CommandError(f"no app {app_id} in {settings.store_name()}; see `renlian apps list`")
    return app


def _app_json(app: AppRecord, *, secret: bool = False) -> dict[str, object]:
    fields: dict[str, object] = {
        "app_id": app.app_id,
        "name": app.name,
        "api_key": app.api_key,
        "secret_key": app.secret_key,
        "brain_all_scope": app.brain_all_scope,
        "qps_limit": app.qps_limit,
        "daily_limit": app.daily_limit,
        "total_limit": app.total_limit,
        "closed": sorted(app.closed),
    }
    return {key: value for key, value in fields.items() if secret or key not in SECRET_FIELDS}


def apps_create(args: argparse.Namespace) -> int:
    app = new_app(args.name, brain_all_scope=not args.signed_only)
    with _app_store(_settings(args)) as apps:
        apps.create_app(app)
    created = _app_json(app, secret=True)
    print(json.dumps({key: created[key] for key in APP_CREATED_FIELDS}))
    return 0


def apps_list(args: argparse.Namespace) -> int:
    with _app_store(_settings(args)) as apps:
        for app in apps.apps():
            print(json.dumps(_app_json(app)))
    return 0


def apps_delete(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _app_store(settings) as apps:
        _existing_app(apps, settings, args.app_id)
        apps.delete_app(args.app_id)
    print(f"deleted app {args.app_id} with its tokens, usage and face library")
    return 0


def apps_rotate_secret(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _app_store(settings) as apps:
        app = with_new_secret(_existing_app(apps, settings, args.app_id))
        apps.update_app(app)
    print(json.dumps(_app_json(app, secret=True)))
    return 0


def apps_set(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _app_store(settings) as apps:
        app = _existing_app(apps, settings, args.app_id)
        updated = _changed(app, args)
        apps.update_app(updated)
    print(json.dumps(_app_json(updated)))
    return 0


def _changed(app: AppRecord, args: argparse.Namespace) -> AppRecord:
    """The app with `apps set`'s flags applied."""
    unknown = set(args.close + args.open) - set(CAPABILITIES)
    if unknown:
        raise CommandError(f"unknown capability {sorted(unknown)}; choose from {', '.join(CAPABILITIES)}")
    limits = {name: getattr(args, name) for name in ("qps_limit", "daily_limit", "total_limit")}
    changes: dict[str, object] = {
        name: (None if value == 0 else value) for name, value in limits.items() if value is not None
    }
    changes["closed"] = (app.closed | set(args.close)) - set(args.open)
    if args.scope is not None:
        changes["brain_all_scope"] = args.scope == "token"
    return replace(app, **changes)  # type: ignore[arg-type]


def backup(args: argparse.Namespace) -> int:
    """Read-only: the live store is neither migrated nor written, whatever renlian version made it."""
    settings = _settings(args)
    if settings.database_url:
        raise CommandError(
            f"the store is in PostgreSQL ({settings.store_name()}): back it up with pg_dump, "
            "which knows its permissions and replication"
        )
    if not settings.store_path().is_file():
        raise CommandError(f"no store at {settings.store_path()}")
    try:
        backup_file(settings.store_path(), args.target, busy_timeout=settings.db_busy_timeout_seconds)
    except FileExistsError as exc:
        raise CommandError(f"{args.target} exists; choose a new path") from exc
    print(f"backed up {settings.store_path()} to {args.target}")
    return 0


def migrate(args: argparse.Namespace) -> int:
    """Copy the data directory's SQLite store into an empty PostgreSQL database, all or nothing."""
    from renlian.store.migrate import MigrateError, copy_to_postgres
    from renlian.store.postgres import masked

    settings = _settings(args)
    _logging(settings)
    source = settings.store_path()
    if not source.is_file():
        raise CommandError(f"no store at {source}")
    try:
        counts = copy_to_postgres(source, args.to)
    except (MigrateError, FaceApiError) as exc:
        raise CommandError(f"nothing was copied: {exc}") from exc
    for table, count in counts.items():
        print(f"{table:12} {count}")
    print(f"copied {source} to {masked(args.to)}; set RENLIAN_DATABASE_URL to use it")
    return 0


def reindex(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    library = _library(settings)
    done = reembed(library.store, library.analyzer)
    library.close()
    library.store.close()
    print(f"re-embedded {done} faces with {settings.recognizer}")
    return 0


def doctor(args: argparse.Namespace) -> int:
    settings = _settings(args)
    found = list(problems(settings))
    for line in found:
        print(f"problem: {line}")
    if found:
        return 1
    for line in checks(settings):
        print(f"ok: {line}")
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
    # Loading them once also keeps the graphs they are edited into beside them (models/derived.py),
    # so that no start from this cache imports onnx: a container's, which cannot write here, too.
    load_analyzer(cache, settings.analyzer_config())
    return 0


def models_list(args: argparse.Namespace) -> int:
    cache = ModelCache(_settings(args).model_cache())
    for spec in MODELS.values():
        state = "ok" if cache.is_valid(spec) else "missing"
        print(f"{spec.name:12} {state:8} {spec.wheel.requirement:28} {spec.purpose}; licence: {spec.licence}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="renlian", description="Self-hosted Baidu Face API (v2 and v3) server."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="start the HTTP server")
    serve_parser.add_argument("--host", help="address to bind (RENLIAN_HOST, default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to bind (RENLIAN_PORT, default 8000)")
    serve_parser.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    serve_parser.set_defaults(handler=serve)

    importing = commands.add_parser("import", help="enrol a folder per user of photos into a group")
    importing.add_argument("folder", type=Path, help="a folder holding one sub-folder of photos per uid")
    importing.add_argument("--group", required=True, help="the group_id to enrol into")
    importing.add_argument("--app", required=True, help="the app_id whose face library receives them")
    importing.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    importing.set_defaults(handler=import_photos)

    backing_up = commands.add_parser("backup", help="copy the live store consistently to a new file")
    backing_up.add_argument("target", type=Path)
    backing_up.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    backing_up.set_defaults(handler=backup)

    migrating = commands.add_parser("migrate", help="copy the SQLite store into an empty PostgreSQL database")
    migrating.add_argument("--to", required=True, help="postgresql://USER:PASS@HOST:PORT/DB")
    migrating.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    migrating.set_defaults(handler=migrate)

    reindexing = commands.add_parser("reindex", help="re-embed faces made by another recognizer")
    reindexing.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    reindexing.set_defaults(handler=reindex)

    doctoring = commands.add_parser("doctor", help="check models, store, data directory and settings")
    doctoring.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
    doctoring.set_defaults(handler=doctor)

    apps = commands.add_parser("apps", help="create and manage apps (credentials, scope, quotas)")
    app_commands = apps.add_subparsers(dest="apps_command", required=True)
    create = app_commands.add_parser("create", help="create an app; prints its credentials as JSON")
    create.add_argument("name")
    create.add_argument(
        "--signed-only",
        action="store_true",
        help="leave brain_all_scope out of its tokens' scope, so Baidu's SDK signs every call (bce-auth-v1)",
    )
    listing_apps = app_commands.add_parser("list", help="every app, one JSON object a line")
    delete = app_commands.add_parser("delete", help="delete an app and its whole face library")
    delete.add_argument("app_id")
    rotate = app_commands.add_parser("rotate-secret", help="new secret key; revokes the app's tokens")
    rotate.add_argument("app_id")
    setting = app_commands.add_parser("set", help="quotas (0 lifts one), capabilities and token scope")
    setting.add_argument("app_id")
    setting.add_argument("--qps", dest="qps_limit", type=int, help="queries per second (error 18)")
    setting.add_argument("--daily", dest="daily_limit", type=int, help="queries per UTC day (error 17)")
    setting.add_argument("--total", dest="total_limit", type=int, help="queries in all (error 19)")
    setting.add_argument(
        "--close", action="append", default=[], help=f"close one of {', '.join(CAPABILITIES)}"
    )
    setting.add_argument("--open", action="append", default=[], help="open a closed capability again")
    setting.add_argument("--scope", choices=["token", "signed"], help="token: include brain_all_scope")
    for parser_, handler in (
        (create, apps_create),
        (listing_apps, apps_list),
        (delete, apps_delete),
        (rotate, apps_rotate_secret),
        (setting, apps_set),
    ):
        parser_.add_argument("--data-dir", type=Path, help="data directory (RENLIAN_DATA_DIR)")
        parser_.set_defaults(handler=handler)

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
    except FaceApiError as exc:
        # The store's errors (216300: busy, damaged, read-only): one line, and the user can act.
        print(f"renlian: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
