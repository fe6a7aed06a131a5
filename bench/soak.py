"""Soak: minutes of mixed traffic from several clients, to catch what short benches and tests miss.

    python -m bench.soak [--minutes 10] [--clients 8] [--json PATH] [--url URL --token T|--data-dir D]
                         [--pid PID] [--photos DIR] [--slice-seconds S] [--seed N] [--write-docs]

Unit tests send one request at a time and the latency bench repeats one request; neither finds a
leak that grows a little per request, a race between enrolment, search and deletion of the same
uid, or an error path that answers HTTP 500 or a code Baidu's document does not have after a few
thousand requests. This runs `--clients` client threads for `--minutes`, each looping over a
weighted mix of v2 calls: detect, match, faceset/user/add (uids from a small pool per client, so the
library stays bounded; a quarter with action_type=replace), identify, verify, faceset/user/delete,
and about 2% malformed requests (bad base64, an empty image, a non-image, the uid "a b", an unknown
path, a bad token, a missing parameter, a huge number).

By default it starts its own `renlian serve` on a free 127.0.0.1 port with a temporary data dir and
an app made by `renlian apps create`, as tests/conftest.py does. `--url` points it at a running server
instead (loopback only), with `--token` or `--data-dir` (the server's, to create an app) and `--pid`
for its memory. Images are variants of the committed test photos (scaled and cropped, so that every
add is new bytes); `--photos DIR` uses the JPEGs under DIR instead (e.g. ../shared/data/lfw).

Pass criteria: no HTTP 5xx; no answer outside the spec's codes (renlian.errors.ErrorCode; a non-200
status, a body that is not a JSON object, or an unknown error_code); no request left unanswered
(a crash or hang); the server's RSS (VmRSS, sampled every 2 s, every second on short runs) grows by
less than 10% after warm-up. Warm-up is the first minute, or the first 10% of a run shorter than 10
minutes; growth is (median over the last warm-up-length of the run - median over the quarter
warm-up either side of warm-up's end) / the latter. Latency p50/p95/p99 is reported per endpoint
and per time slice (a minute, or a quarter of a run shorter than 5 minutes). Codes that are in the
spec but not what a request should get (216500 for a well-formed detect, 216100 for a bad token)
are listed for a human to judge, with the first few requests and answers of every kind of problem.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import random
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from bench.datasets import machine, read_bgr, write_section
from renlian.errors import ErrorCode
from renlian.settings import Settings
from tests.conftest import Server, create_app, start_server, token_for

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data"
V2 = "/rest/2.0/face/v2"
SPEC_CODES = frozenset(code.code for code in ErrorCode)
# Codes a server answers when something broke inside it: in the spec, but worth a human's look.
INTERNAL_CODES = frozenset({216300, 216400, 216401, 216500})
ENDPOINTS = ("detect", "match", "add", "identify", "verify", "delete", "malformed")
# Weights of the mix, out of 100: 2 malformed.
MIX = {"detect": 24, "match": 14, "add": 20, "identify": 16, "verify": 16, "delete": 8, "malformed": 2}
# Error codes a well-formed request may rightly get while other clients add and delete the same uids.
ALLOWED = {
    "detect": frozenset[int](),
    "match": frozenset[int](),
    "add": frozenset({216616}),  # image existed: the uid already has these bytes (append)
    "identify": frozenset({216618}),  # no user in group: before the first add, or after deletes
    "verify": frozenset({216611}),  # user not exist: deleted, or not yet added
    "delete": frozenset({216611}),
}
# What each kind of malformed request should get.
MALFORMED = {
    "bad_base64": frozenset({216200, 216201}),
    "empty_image": frozenset({216101, 216200}),
    "non_image": frozenset({216201}),
    "bad_uid": frozenset({216111}),
    "unknown_path": frozenset({216102}),
    "bad_token": frozenset({110}),
    "missing_param": frozenset({216101}),
    "huge_number": frozenset({216100}),
}
VARIANTS_PER_PHOTO = 6
UIDS_PER_CLIENT = 6
GROUP = "soak"
RSS_GROWTH_LIMIT = 0.10
EXAMPLES_PER_PROBLEM = 5
REQUEST_TIMEOUT_S = 120.0


# Images ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """One photo's base64, already form-quoted (encoding 40 KB per request would load the client),
    the person it shows, and a name for reports."""

    quoted: str
    person: str
    name: str
    size: int


def variants(paths: list[Path], per_photo: int, seed: int) -> list[Image]:
    """`per_photo` distinct JPEGs of each photo, each cropped and scaled a little differently."""
    rng = np.random.default_rng(seed)
    out = []
    for path in paths:
        image = read_bgr(path)
        h, w = image.shape[:2]
        for i in range(per_photo):
            top, bottom, left, right = (int(v) for v in rng.integers(0, max(1, int(0.08 * min(h, w))), 4))
            scale = float(rng.uniform(0.6, 1.0))
            cropped = image[top : h - bottom, left : w - right]
            size = (round(cropped.shape[1] * scale), round(cropped.shape[0] * scale))
            jpeg = cv2.imencode(".jpg", cv2.resize(cropped, size), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            out.append(image_of(jpeg.tobytes(), path.stem, f"{path.stem} variant {i}"))
    return out


def image_of(data: bytes, person: str, name: str) -> Image:
    return Image(urllib.parse.quote_plus(base64.b64encode(data).decode()), person, name, len(data))


def photo_paths(folder: Path | None, limit: int = 40) -> list[Path]:
    """The committed test photos, or up to `limit` JPEGs under `folder` spread over its people."""
    if folder is None:
        return [PHOTOS / f"{name}.jpg" for name in ("astronaut", "grace_hopper", "obama", "biden")]
    found = sorted(folder.rglob("*.jpg"))
    if not found:
        raise SystemExit(f"no .jpg under {folder}")
    step = max(1, len(found) // limit)
    return found[::step][:limit]


# Requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    endpoint: str  # one of ENDPOINTS
    kind: str  # the malformed kind, or the endpoint again
    path: str
    body: bytes
    summary: str  # the request without its images' text, for reports
    token: str | None = None  # another token than the app's (bad_token)


def form(fields: dict[str, str], images: dict[str, str] | None = None) -> bytes:
    """A form body; `images` values are already quoted."""
    parts = [f"{k}={urllib.parse.quote_plus(v)}" for k, v in fields.items()]
    parts += [f"{k}={v}" for k, v in (images or {}).items()]
    return "&".join(parts).encode()


def describe(path: str, fields: dict[str, str], images: Iterable[Image] = ()) -> str:
    shown = {k: (v if len(v) <= 40 else f"{v[:12]}...({len(v)} chars)") for k, v in fields.items()}
    text = " ".join(f"{k}={v!r}" for k, v in shown.items())
    pictures = ", ".join(f"{i.name} ({i.size // 1024} KB)" for i in images)
    return f"POST {path} {text}" + (f" images=[{pictures}]" if pictures else "")


class Traffic:
    """One client's request generator: its own random stream and its own bounded pool of uids."""

    def __init__(self, client: int, images: list[Image], seed: int) -> None:
        self.rng = random.Random(seed * 1000 + client)
        self.images = images
        self.uids = [f"c{client}_u{k}" for k in range(UIDS_PER_CLIENT)]
        self.own_group = f"{GROUP}_c{client}"
        self.makers: dict[str, Callable[[], Call]] = {
            "detect": self.detect,
            "match": self.match,
            "add": self.add,
            "identify": self.identify,
            "verify": self.verify,
            "delete": self.delete,
            "malformed": self.malformed,
        }

    def next(self) -> Call:
        endpoint = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        return self.makers[endpoint]()

    def image(self) -> Image:
        return self.rng.choice(self.images)

    def call(self, endpoint: str, path: str, fields: dict[str, str], images: dict[str, list[Image]]) -> Call:
        quoted = {k: "%2C".join(i.quoted for i in v) for k, v in images.items()}
        shown = [i for v in images.values() for i in v]
        return Call(endpoint, endpoint, path, form(fields, quoted), describe(path, fields, shown))

    def detect(self) -> Call:
        fields = {
            "max_face_num": str(self.rng.randint(1, 3)),
            "face_fields": self.rng.choice(["", "", "", "landmark", "age,gender,expression", "qualities"]),
        }
        return self.call("detect", f"{V2}/detect", fields, {"image": [self.image()]})

    def match(self) -> Call:
        count = 3 if self.rng.random() < 0.1 else 2
        fields = {"image_liveness": "faceliveness,"} if self.rng.random() < 0.2 else {}
        return self.call("match", f"{V2}/match", fields, {"images": [self.image() for _ in range(count)]})

    def add(self) -> Call:
        uid = self.rng.choice(self.uids)
        groups = GROUP if self.rng.random() < 0.7 else f"{GROUP},{self.own_group}"
        fields = {"uid": uid, "user_info": f"soak user {uid}", "group_id": groups}
        if self.rng.random() < 0.25:
            fields["action_type"] = "replace"
        return self.call("add", f"{V2}/faceset/user/add", fields, {"image": [self.image()]})

    def identify(self) -> Call:
        fields = {"group_id": GROUP, "user_top_num": str(self.rng.randint(1, 5))}
        return self.call("identify", f"{V2}/identify", fields, {"image": [self.image()]})

    def verify(self) -> Call:
        fields = {"uid": self.rng.choice(self.uids), "group_id": GROUP}
        return self.call("verify", f"{V2}/verify", fields, {"image": [self.image()]})

    def delete(self) -> Call:
        fields = {"uid": self.rng.choice(self.uids)}
        if self.rng.random() < 0.3:
            fields["group_id"] = self.own_group
        return self.call("delete", f"{V2}/faceset/user/delete", fields, {})

    def malformed(self) -> Call:
        kind = self.rng.choice(list(MALFORMED))
        path, fields, images, token = malformed_request(kind, self.rng, self.image(), self.uids[0])
        quoted = {k: "%2C".join(i.quoted for i in v) for k, v in images.items()}
        summary = describe(path, fields, [i for v in images.values() for i in v])
        if token:
            summary += f" access_token={token!r}"
        return Call("malformed", kind, path, form(fields, quoted), summary, token)


NOT_AN_IMAGE = b"renlian soak: this text is not an image, whatever its name says.\n" * 8


def malformed_request(
    kind: str, rng: random.Random, image: Image, uid: str
) -> tuple[str, dict[str, str], dict[str, list[Image]], str | None]:
    """(path, plain fields, image fields, token override) of one malformed request of `kind`."""
    if kind == "bad_base64":
        return f"{V2}/detect", {"image": "@@not base64 at all!!" * 20}, {}, None
    if kind == "empty_image":
        return rng.choice(
            [
                (f"{V2}/detect", {"image": ""}, {}, None),
                (f"{V2}/identify", {"image": "", "group_id": GROUP}, {}, None),
            ]
        )
    if kind == "non_image":
        text = base64.b64encode(NOT_AN_IMAGE).decode()
        return f"{V2}/match", {"images": f"{text},{text}"}, {}, None
    if kind == "bad_uid":
        return (
            f"{V2}/faceset/user/add",
            {"uid": "a b", "user_info": "x", "group_id": GROUP},
            {"image": [image]},
            None,
        )
    if kind == "unknown_path":
        return rng.choice([f"{V2}/no_such_service", "/rest/2.0/face/v3/detect"]), {}, {"image": [image]}, None
    if kind == "bad_token":
        return f"{V2}/detect", {}, {"image": [image]}, "24.00000000000000000000000000000000.2592000.0.bad"
    if kind == "missing_param":
        return rng.choice(
            [
                (f"{V2}/identify", {}, {"image": [image]}, None),  # no group_id
                (f"{V2}/verify", {"group_id": GROUP}, {"image": [image]}, None),  # no uid
                (f"{V2}/faceset/user/add", {"uid": uid, "group_id": GROUP}, {"image": [image]}, None),
                (f"{V2}/detect", {}, {}, None),  # no image
            ]
        )
    if kind == "huge_number":
        number = rng.choice(["9" * 30, "9" * 5000, str(2**64), "-1"])
        name, path, extra = rng.choice(
            [
                ("max_face_num", f"{V2}/detect", {}),
                ("user_top_num", f"{V2}/identify", {"group_id": GROUP}),
                ("top_num", f"{V2}/verify", {"group_id": GROUP, "uid": uid}),
            ]
        )
        return path, {**extra, name: number}, {"image": [image]}, None
    raise ValueError(kind)


# Clients --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    t: float  # seconds from the start of the run when the request was sent
    client: int
    endpoint: str
    kind: str
    ms: float
    status: int | None  # None: no answer (connection refused or reset, timeout)
    code: int | None  # error_code, None for a success or no JSON object


@dataclass
class Problem:
    """One request whose answer breaks a criterion or is not what its kind should get."""

    what: str
    t: float
    client: int
    request: str
    status: int | None
    answer: str


@dataclass
class Shared:
    """What the client threads and the memory sampler write, under one lock."""

    start: float
    deadline: float
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_counts: Counter[str] = field(default_factory=Counter)

    def problem(self, problem: Problem) -> None:
        with self.lock:
            self.problem_counts[problem.what] += 1
            if self.problem_counts[problem.what] <= EXAMPLES_PER_PROBLEM:
                self.problems.append(problem)


def judge(call: Call, status: int, text: str) -> tuple[int | None, str | None]:
    """(error_code, what is wrong or None): `text` is the answer's body."""
    if status >= 500:
        return None, f"HTTP {status}"
    try:
        body = json.loads(text)
    except ValueError:
        return None, f"out of spec: HTTP {status}, not JSON"
    if not isinstance(body, dict):
        return None, f"out of spec: HTTP {status}, JSON but not an object"
    code = body.get("error_code")
    if code is not None and (not isinstance(code, int) or code not in SPEC_CODES):
        return None, f"out of spec: error_code {code!r}"
    if status != 200:
        return code, f"out of spec: HTTP {status}"
    if "log_id" not in body:
        return code, "out of spec: no log_id"
    expected = MALFORMED.get(call.kind) if call.endpoint == "malformed" else ALLOWED[call.endpoint]
    if call.endpoint == "malformed" and code not in (expected or ()):
        return code, f"unexpected: {call.kind} answered {code}"
    if call.endpoint != "malformed" and code is not None and code not in (expected or ()):
        return code, f"unexpected: {call.endpoint} answered {code}"
    return code, None


def client_loop(client: int, base_url: str, token: str, traffic: Traffic, shared: Shared) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    records: list[Record] = []
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S, headers=headers) as http:
        while not shared.stop.is_set() and time.monotonic() < shared.deadline:
            call = traffic.next()
            sent = time.monotonic()
            status: int | None = None
            try:
                response = http.post(
                    call.path, content=call.body, params={"access_token": call.token or token}
                )
                status, text = response.status_code, response.text
            except httpx.TransportError as exc:
                text = f"{type(exc).__name__}: {exc}"
            ms = (time.monotonic() - sent) * 1000
            code, wrong = judge(call, status, text) if status is not None else (None, "no answer")
            records.append(Record(sent - shared.start, client, call.endpoint, call.kind, ms, status, code))
            if wrong:
                shared.problem(
                    Problem(wrong, round(sent - shared.start, 2), client, call.summary, status, text[:600])
                )
            if status is None:
                time.sleep(0.5)  # a dead server: do not spin
    with shared.lock:
        shared.records.extend(records)


# Memory ---------------------------------------------------------------------------------------


def rss_mib(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MiB, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # a zombie
        return None
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def sample_memory(
    pid: int, interval: float, shared: Shared, samples: list[tuple[float, float, float]]
) -> None:
    """Append (seconds, RSS, peak) every `interval` until the run ends; a vanished server ends it."""
    while not shared.stop.is_set() and time.monotonic() < shared.deadline:
        found = rss_mib(pid)
        if found is None:
            shared.problem(Problem("server process gone", time.monotonic() - shared.start, -1, "-", None, ""))
            shared.stop.set()
            return
        samples.append((time.monotonic() - shared.start, *found))
        shared.stop.wait(interval)


@dataclass
class Memory:
    start: float
    after_warmup: float
    end: float
    peak: float
    growth: float  # fraction

    @classmethod
    def of(cls, samples: list[tuple[float, float, float]], warmup: float, duration: float) -> Memory | None:
        around = [rss for t, rss, _ in samples if warmup * 0.75 <= t <= warmup * 1.25]
        last = [rss for t, rss, _ in samples if t >= duration - warmup]
        if not samples or not around or not last:
            return None
        base, end = statistics.median(around), statistics.median(last)
        return cls(samples[0][1], base, end, max(peak for *_, peak in samples), (end - base) / base)


# Report ---------------------------------------------------------------------------------------


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(records: list[Record]) -> dict[str, float]:
    ordered = sorted(r.ms for r in records)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "errors": sum(r.code is not None for r in records),
        "p50": quantile(ordered, 0.5),
        "p95": quantile(ordered, 0.95),
        "p99": quantile(ordered, 0.99),
    }


def slices(records: list[Record], width: float, duration: float) -> list[dict[str, Any]]:
    """Per time slice (by send time) and endpoint: count, error answers, p50/p95/p99."""
    count = max(1, math.ceil(duration / width - 1e-9))
    out = []
    for i in range(count):
        inside = [
            r for r in records if i * width <= r.t < (i + 1) * width or (i == count - 1 and r.t >= i * width)
        ]
        by_endpoint = {e: latency([r for r in inside if r.endpoint == e]) for e in ENDPOINTS}
        out.append({"from_s": i * width, "to_s": min((i + 1) * width, duration), "endpoints": by_endpoint})
    return out


def slice_label(entry: dict[str, Any]) -> str:
    a, b = entry["from_s"], entry["to_s"]
    if a % 60 == 0 and b % 60 == 0:
        return f"min {a / 60 + 1:.0f}"
    return f"{a:.0f}-{b:.0f} s"


def cell(stats: dict[str, float], key: str) -> str:
    return f"{stats[key]:.0f}" if stats.get("count") else "-"


def stats_row(label: str, s: dict[str, float]) -> str:
    """| label | requests | error answers | p50 | p95 | p99 |"""
    cells = [str(s["count"]), str(s.get("errors", 0)), *(cell(s, q) for q in ("p50", "p95", "p99"))]
    return f"| {label} | " + " | ".join(cells) + " |"


def endpoint_tables(sliced: list[dict[str, Any]], totals: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for endpoint in ENDPOINTS:
        lines += [
            f"{endpoint}:",
            "",
            "| slice | requests | error answers | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|---|",
        ]
        for entry in [*sliced, {"label": "all", "endpoints": totals}]:
            s = entry["endpoints"][endpoint]
            label = entry.get("label") or slice_label(entry)
            lines.append(stats_row(label, s))
        lines.append("")
    return lines


def summary_lines(
    args: argparse.Namespace,
    result: dict[str, Any],
    sliced: list[dict[str, Any]],
    totals: dict[str, dict[str, float]],
) -> list[str]:
    settings = Settings()
    c = result["counts"]
    memory = result["memory"]
    header = "| endpoint | " + " | ".join(slice_label(s) for s in sliced) + " |"
    lines = [
        "## Soak: mixed traffic",
        "",
        f"Measured {machine()} with `{result['command']}`; {args.clients} client threads, "
        f"{result['duration_s'] / 60:.1f} min, {c['requests']} requests "
        f"({c['requests'] / result['duration_s']:.1f}/s), "
        f"{c['malformed']} malformed; recognizer {settings.recognizer}, inference workers x threads "
        f"{settings.inference_workers} x {settings.threads_per_worker}"
        + (" (this shell's settings; the server's own may differ)" if args.url else "")
        + ".",
        "",
        "| endpoint | requests | error answers | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
        *(stats_row(e, s) for e, s in totals.items()),
        "",
        "p99 ms per endpoint over time:",
        "",
        header,
        "|---|" + "---|" * len(sliced),
        *(f"| {e} | " + " | ".join(cell(s["endpoints"][e], "p99") for s in sliced) + " |" for e in ENDPOINTS),
        "",
    ]
    if memory:
        lines.append(
            f"Server RSS: {memory['start']:.0f} MiB at start, {memory['after_warmup']:.0f} after "
            f"{result['warmup_s']:.0f} s of warm-up, {memory['end']:.0f} at the end, "
            f"peak {memory['peak']:.0f}: "
            f"growth {memory['growth'] * 100:+.1f}%."
        )
    else:
        lines.append("Server RSS: not measured (give --pid with --url).")
    lines += ["", *(f"- {line}" for line in result["verdict_lines"])]
    return lines


def verdict(result: dict[str, Any]) -> tuple[bool, list[str]]:
    c, memory = result["counts"], result["memory"]
    checks = [
        ("HTTP 5xx", c["http_5xx"], "0"),
        ("answers outside the spec's codes", c["out_of_spec"], "0"),
        ("requests without an answer (crash, reset, timeout)", c["no_answer"], "0"),
    ]
    lines = [
        f"{name}: {value} (target {target}): {'ok' if value == 0 else 'FAILED'}"
        for name, value, target in checks
    ]
    passed = all(value == 0 for _, value, _ in checks)
    if memory:
        grew = memory["growth"] < RSS_GROWTH_LIMIT
        passed = passed and grew
        lines.append(
            f"RSS growth after warm-up: {memory['growth'] * 100:+.1f}% (target < 10%): "
            + ("ok" if grew else "FAILED")
        )
    else:
        lines.append("RSS growth after warm-up: not measured")
    lines.append(
        f"answers in the spec but not what the request should get (not a criterion): {c['unexpected']}; "
        f"internal-error codes {sorted(INTERNAL_CODES)}: {c['internal']}"
    )
    lines.append(
        ("PASS" if passed else "FAIL") + ": 0 5xx, 0 out-of-spec, every request answered, RSS growth < 10%"
    )
    return passed, lines


def command_line(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The command as run, less --json (a local path) and the options left at their defaults."""
    words = ["python -m bench.soak"]
    for name, value in vars(args).items():
        if name == "json" or value in (None, False) or value == parser.get_default(name):
            continue
        flag = "--" + name.replace("_", "-")
        words.append(
            flag if value is True else f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"
        )
    return " ".join(words)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    git = ["git", "-C", str(Path(__file__).resolve().parents[1])]
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain"], capture_output=True, text=True, check=False
    ).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or "unknown",
        "uncommitted_changes": bool(dirty.strip()),
        "python": platform.python_version(),
    }


# Run ------------------------------------------------------------------------------------------


@dataclass
class Target:
    base_url: str
    token: str
    pid: int | None
    server: Server | None = None
    log: Path | None = None


def loopback_only(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--url must be a loopback address (127.0.0.1), not {host}")
    return url.rstrip("/")


def target(args: argparse.Namespace, scratch: Path) -> Target:
    if not args.url:
        server = start_server(scratch)
        return Target(server.base_url, server.token, server.process.pid, server, scratch / "server.log")
    base_url = loopback_only(args.url)
    if args.token:
        return Target(base_url, args.token, args.pid)
    if not args.data_dir:
        raise SystemExit("--url needs --token, or --data-dir (the server's) to create an app")
    return Target(base_url, token_for(base_url, create_app(Path(args.data_dir), "soak")), args.pid)


def server_log_failures(log: Path | None) -> dict[str, Any]:
    """How many unexpected failures the server logged, and the first traceback, for bug reports."""
    if log is None or not log.exists():
        return {}
    lines = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    logged = sum("unexpected failure" in line or "Exception in ASGI" in line for line in lines)
    first = ""
    if starts:
        # The line before the traceback (what the server said) and its last frames and exception.
        end = next((i for i in range(starts[0] + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
        first = "\n".join(
            [*lines[max(0, starts[0] - 1) : starts[0] + 1], *lines[max(starts[0] + 1, end - 8) : end + 1]]
        )
    return {"tracebacks": len(starts), "unexpected_failure_lines": logged, "first_traceback": first}


def run(args: argparse.Namespace, images: list[Image], where: Target, duration: float) -> dict[str, Any]:
    start = time.monotonic()
    shared = Shared(start=start, deadline=start + duration)
    samples: list[tuple[float, float, float]] = []
    threads = [
        threading.Thread(
            target=client_loop,
            args=(i, where.base_url, where.token, Traffic(i, images, args.seed), shared),
            name=f"client{i}",
        )
        for i in range(args.clients)
    ]
    if where.pid:
        interval = 2.0 if duration >= 600 else 1.0
        threads.append(threading.Thread(target=sample_memory, args=(where.pid, interval, shared, samples)))
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            progress(shared, samples, start, duration)
            shared.stop.wait(min(30.0, max(5.0, duration / 10)))
    except KeyboardInterrupt:
        print("interrupted: finishing the requests in flight", flush=True)
        shared.stop.set()
    for thread in threads:
        thread.join()
    return {"shared": shared, "samples": samples, "elapsed": time.monotonic() - start}


def progress(
    shared: Shared, samples: list[tuple[float, float, float]], start: float, duration: float
) -> None:
    with shared.lock:
        problems = sum(shared.problem_counts.values())
    rss = f", RSS {samples[-1][1]:.0f} MiB" if samples else ""
    print(f"[{time.monotonic() - start:5.0f}/{duration:.0f} s] problems so far {problems}{rss}", flush=True)


def tally(records: list[Record], problems: Counter[str]) -> dict[str, int]:
    return {
        "requests": len(records),
        "malformed": sum(r.endpoint == "malformed" for r in records),
        "http_5xx": sum(r.status is not None and r.status >= 500 for r in records),
        "out_of_spec": sum(n for what, n in problems.items() if what.startswith("out of spec")),
        "no_answer": problems["no answer"],
        "unexpected": sum(n for what, n in problems.items() if what.startswith("unexpected")),
        "internal": sum(r.code in INTERNAL_CODES for r in records),
    }


def code_table(records: list[Record]) -> dict[str, dict[str, int]]:
    """Per endpoint (and per malformed kind): how many answers carried each code ("ok": none)."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        key = r.endpoint if r.endpoint != "malformed" else f"malformed/{r.kind}"
        table[key]["no answer" if r.status is None else str(r.code) if r.code is not None else "ok"] += 1
    return {key: dict(sorted(counts.items())) for key, counts in sorted(table.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write every figure, the machine, date and commit here")
    parser.add_argument("--url", help="a running server (loopback only) instead of starting one")
    parser.add_argument("--token", help="with --url: an access token of an app")
    parser.add_argument("--data-dir", help="with --url: the server's data dir, to create an app in")
    parser.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    parser.add_argument("--photos", type=Path, help="JPEGs under this folder instead of tests/data")
    parser.add_argument("--slice-seconds", type=float, help="time slice of the latency tables")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true", help="write the summary into docs/benchmarks.md")
    args = parser.parse_args()
    duration = args.minutes * 60
    warmup = min(60.0, duration * 0.1)
    width = args.slice_seconds or (60.0 if duration >= 300 else duration / 4)
    paths = photo_paths(args.photos)
    per_photo = VARIANTS_PER_PHOTO if args.photos is None else 1
    images = variants(paths, per_photo, args.seed)
    print(
        f"{len(images)} images from {len(paths)} photos; {args.clients} clients for {duration:.0f} s",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="renlian-bench-soak-") as scratch:
        where = target(args, Path(scratch))
        try:
            ran = run(args, images, where, duration)
        finally:
            if where.server is not None:
                where.server.stop()
        logged = server_log_failures(where.log)
    shared: Shared = ran["shared"]
    records = sorted(shared.records, key=lambda r: r.t)
    elapsed = min(ran["elapsed"], duration) if records else ran["elapsed"]
    sliced = slices(records, width, elapsed)
    totals = {e: latency([r for r in records if r.endpoint == e]) for e in ENDPOINTS}
    memory = Memory.of(ran["samples"], warmup, elapsed)
    result: dict[str, Any] = {
        "command": command_line(args, parser),
        "machine": machine_info(),
        "clients": args.clients,
        "duration_s": elapsed,
        "warmup_s": warmup,
        "slice_s": width,
        "mix": MIX,
        "images": len(images),
        "counts": tally(records, shared.problem_counts),
        "codes": code_table(records),
        "totals": totals,
        "slices": sliced,
        "memory": asdict(memory) if memory else None,
        "rss_samples": [
            {"t": round(t, 1), "rss_mib": round(r, 1), "peak_mib": round(p, 1)} for t, r, p in ran["samples"]
        ],
        "problems": {what: n for what, n in shared.problem_counts.most_common()},
        "problem_examples": [asdict(p) for p in shared.problems],
        "server_log": logged,
    }
    passed, result["verdict_lines"] = verdict(result)
    result["passed"] = passed
    report(result, sliced, totals, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    raise SystemExit(0 if passed else 1)


def report(
    result: dict[str, Any],
    sliced: list[dict[str, Any]],
    totals: dict[str, dict[str, float]],
    args: argparse.Namespace,
) -> None:
    print("\n".join(["", "# Per endpoint and time slice", "", *endpoint_tables(sliced, totals)]))
    print("# Answers by code (ok = success)")
    for key, counts in result["codes"].items():
        print(f"  {key}: {counts}")
    if result["problem_examples"]:
        print("\n# Problems (first few of each kind)")
        for p in result["problem_examples"]:
            print(
                f"- [{p['what']}] t={p['t']} s client {p['client']}: {p['request']}\n"
                f"    -> HTTP {p['status']}: {p['answer'][:300]}"
            )
    if result["server_log"].get("tracebacks"):
        print(
            f"\n# Server log: {result['server_log']['tracebacks']} tracebacks; the first:\n"
            + result["server_log"]["first_traceback"]
        )
    lines = summary_lines(args, result, sliced, totals)
    print("\n# Markdown for docs/benchmarks.md\n")
    print("\n".join(["<!-- soak:start -->", *lines, "<!-- soak:end -->"]))
    if args.write_docs:
        write_section(Path("docs/benchmarks.md"), "soak", lines)


if __name__ == "__main__":
    main()
