"""Open-set identification (1:N with strangers among the probes) through the real face library.

    python -m bench.identify_eval [--recognizer mbf|sface|both] [--write-docs]

For each identity set, half of its people (chosen with numpy default_rng(0)) are enrolled, up to
five photos each, into one group of a fresh SQLite store by `FaceLibrary.add`; every other photo of
an enrolled person is a known probe, every photo of the other half an unknown probe, and each probe
goes through `FaceLibrary.identify`, exactly as the identify endpoint runs it. celeb_aligned112
photos are aligned crops already, so they skip detection (see `AlignedCrops`); ORL and Yale photos
are padded first when the face fills the frame, as bench/calibrate.py does.

Reported: top-1 accuracy of known probes (also counting only hits scoring at least 70/80/90), how
often a known probe's best match is the wrong person at 80 or more, and how often an unknown
person's best match scores at least 70/80/90 (false alarms). With --write-docs the table goes into
docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bench.datasets import IDENTITY_SETS, Sample, analyzer, identity_set, machine, read_bgr, write_section
from renlian.errors import FaceApiError
from renlian.library.faces import enrolment_face
from renlian.library.library import FaceLibrary
from renlian.store.sqlite import SQLiteStore
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import Embedding
from renlian.vision.score import similarity_score

APP = "bench"
GROUP = "people"
ENROL_PHOTOS = 5
THRESHOLDS = (70, 80, 90)
ALIGNED_SET = "celeb_aligned112"


class AlignedCrops(FaceAnalyzer):
    """The analyzer for photos that already are aligned 112x112 ArcFace crops.

    YuNet cannot find a face that fills the whole frame, so detection and alignment are skipped;
    everything after the embedding (store, index, ranking, user_info lookup) stays the library's own.
    """

    def __init__(self, base: FaceAnalyzer) -> None:
        # Reuse the loaded models rather than load a second copy.
        self.__dict__.update(base.__dict__)

    def enrolment_face(self, image: BGRImage) -> tuple[Embedding, BGRImage]:
        return self.embedder.embed(image), image

    def probe(self, image: BGRImage, *, liveness: bool) -> tuple[Embedding, float | None]:
        return self.embedder.embed(image), None


@dataclass
class Tally:
    """Counts for one set and recognizer; the overall row sums them."""

    enrolled_people: int = 0
    enrolled_photos: int = 0
    # Baidu error code -> how many enrolments failed with it (Yale holds byte-identical photos: 216616).
    enrol_failed: Counter[int] = field(default_factory=Counter)
    known: int = 0
    unknown: int = 0
    no_face: int = 0
    top1: int = 0
    top1_at: dict[int, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))
    wrong_at_80: int = 0
    alarms_at: dict[int, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))

    def add(self, other: Tally) -> None:
        self.enrol_failed.update(other.enrol_failed)
        for name in ("enrolled_people", "enrolled_photos", "known", "unknown", "no_face"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.top1 += other.top1
        self.wrong_at_80 += other.wrong_at_80
        for t in THRESHOLDS:
            self.top1_at[t] += other.top1_at[t]
            self.alarms_at[t] += other.alarms_at[t]


def photo_pixels(model: FaceAnalyzer, sample: Sample, aligned: bool) -> BGRImage:
    """What the library is handed for a photo: the crop itself, or the photo padded if it must be."""
    image = read_bgr(sample.path)
    if aligned:
        return cv2.resize(image, (112, 112))
    if model.detector.detect(image):
        return image
    # ORL and Yale faces reach the frame's edges; a border lets YuNet see the whole head.
    pad = image.shape[0] // 2
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT)


def split(samples: list[Sample]) -> tuple[dict[str, list[Sample]], dict[str, list[Sample]], list[Sample]]:
    """(enrolment photos per enrolled person, known probes per person, unknown probes).

    A fresh generator per set keeps the split identical for both recognizers and any set order.
    """
    rng = np.random.default_rng(0)
    by_person: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_person[sample.identity].append(sample)
    people = sorted(by_person)
    chosen = {people[i] for i in rng.choice(len(people), size=len(people) // 2, replace=False)}
    enrol: dict[str, list[Sample]] = {}
    known: dict[str, list[Sample]] = {}
    unknown: list[Sample] = []
    for person in people:
        photos = by_person[person]
        if person in chosen:
            order = [photos[i] for i in rng.permutation(len(photos))]
            enrol[person], known[person] = order[:ENROL_PHOTOS], order[ENROL_PHOTOS:]
        else:
            unknown.extend(photos)
    return enrol, known, unknown


def evaluate_set(model: FaceAnalyzer, name: str, recognizer: str) -> Tally:
    aligned = name == ALIGNED_SET
    engine = AlignedCrops(model) if aligned else model
    enrol, known, unknown = split(identity_set(name))
    # Identity names hold spaces and other characters uids may not; the index in sorted order is a uid.
    uid_of = {person: f"p{i}" for i, person in enumerate(sorted(enrol))}
    tally = Tally(enrolled_people=len(enrol))
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "renlian.sqlite3")
        library = FaceLibrary(store, engine)
        for person, photos in enrol.items():
            for sample in photos:
                try:
                    face = enrolment_face(
                        library.analyzer, sample.path.read_bytes(), photo_pixels(model, sample, aligned)
                    )
                    library.add(
                        APP, uid_of[person], person, [GROUP], [face], replace=False, require_existing=False
                    )
                    tally.enrolled_photos += 1
                except FaceApiError as exc:
                    tally.enrol_failed[exc.error.code] += 1
        probes: list[tuple[Sample, str | None]] = [
            (s, uid_of[p]) for p, samples in known.items() for s in samples
        ]
        probes += [(s, None) for s in unknown]
        for sample, truth in tqdm(probes, desc=f"{recognizer} {name}", unit="probe"):
            if truth is None:
                tally.unknown += 1
            else:
                tally.known += 1
            try:
                query = library.analyzer.embed_largest(photo_pixels(model, sample, aligned))
                hits = library.search_embeddings(APP, [GROUP], query[None, :], 1, require_faces=True)[0]
            except FaceApiError:
                # No face found: a known probe is a miss, an unknown one raises no alarm.
                tally.no_face += 1
                continue
            score = similarity_score(hits[0].scores[0], recognizer)
            if truth is None:
                for t in THRESHOLDS:
                    tally.alarms_at[t] += score >= t
            elif hits[0].uid == truth:
                tally.top1 += 1
                for t in THRESHOLDS:
                    tally.top1_at[t] += score >= t
            else:
                tally.wrong_at_80 += score >= 80
        store.close()
    return tally


def pct(count: int, total: int) -> str:
    return f"{100 * count / total:.2f}%" if total else "-"


def row(recognizer: str, name: str, t: Tally) -> str:
    failed = ", ".join(f"{count} x {code}" for code, count in sorted(t.enrol_failed.items()))
    enrolled = f"{t.enrolled_people} / {t.enrolled_photos}" + (f" (refused: {failed})" if failed else "")
    probes = f"{t.known} / {t.unknown}" + (f" ({t.no_face} no face)" if t.no_face else "")
    top1 = " | ".join(pct(t.top1_at[th], t.known) for th in THRESHOLDS)
    alarms = " | ".join(pct(t.alarms_at[th], t.unknown) for th in THRESHOLDS)
    return (
        f"| {recognizer} | {name} | {enrolled} | {probes} | {pct(t.top1, t.known)} | {top1} | "
        f"{pct(t.wrong_at_80, t.known)} | {alarms} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recognizer", choices=["mbf", "sface", "both"], default="both")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    recognizers = ["mbf", "sface"] if args.recognizer == "both" else [args.recognizer]
    rows = []
    for recognizer in recognizers:
        model = analyzer(recognizer)
        overall = Tally()
        for name in IDENTITY_SETS:
            tally = evaluate_set(model, name, recognizer)
            overall.add(tally)
            rows.append(row(recognizer, name, tally))
            print(rows[-1], flush=True)
        rows.append(row(recognizer, "**all three**", overall))
    table = [
        "| embedder | set | enrolled people / photos | known / unknown probes | top-1 | top-1 and >= 70 "
        "| >= 80 | >= 90 | wrong person >= 80 | unknown >= 70 | >= 80 | >= 90 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    print("\n".join(table))
    if args.write_docs:
        write_section(Path("docs/accuracy.md"), "identify_eval", docs_section(table))


def docs_section(table: list[str]) -> list[str]:
    paragraphs = [
        'identify answers "who, among the enrolled, is this?" and the caller decides from the score '
        "whether to believe it, so it is measured with strangers among the probes. In each set, half "
        f"the people (numpy `default_rng(0)`) are enrolled with up to {ENROL_PHOTOS} photos each "
        "through `FaceLibrary.add`; every other photo of an enrolled person is a known probe and every "
        "photo of the other half an unknown one, each run through `FaceLibrary.identify` as the "
        "endpoint runs it (celeb_aligned112 crops skip detection, as in the calibration above).",
        'Top-1 is the share of known probes whose best match is the right person; "top-1 and >= 80" '
        "also requires that match to score at least 80, which is what an application accepting at "
        'Baidu\'s recommended 80 gets right. "Wrong person >= 80" is the share of known probes '
        'accepted as someone else at 80, and "unknown >= t" the share of strangers whose best match '
        "scores at least t (false alarms). A probe with no face found counts as a miss, and raises no "
        "alarm. Yale holds byte-identical copies of some photos: the library refuses a photo already "
        "enrolled for the person (216616), and such a copy among the probes matches trivially.",
        "A stranger is compared with every enrolled face and only the best score counts, so false "
        "alarms grow with the gallery: if a single impostor pair reaches a score with probability p "
        "(the FAR in the calibration table), a stranger's best match among n faces does with about "
        "1 - (1 - p)^n. These galleries hold 33 to 100 faces; in a gallery of thousands, accept only "
        "at a higher score, or add a second factor.",
    ]
    # Wrapped like the hand-written text around it, so that the file reads well as plain text too.
    wrapped = [line for text in paragraphs for line in [*textwrap.wrap(text, 100), ""]]
    return [
        "## Identify: open-set 1:N",
        "",
        *wrapped,
        f"Measured {machine()} with `python -m bench.identify_eval --write-docs`.",
        "",
        *table,
    ]


if __name__ == "__main__":
    main()
