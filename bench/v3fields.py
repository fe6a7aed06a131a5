"""Measure v3 detect's eye_status, emotion, mask and spoofing on held-out data, through the analyzer.

    python -m bench.v3fields [--write-docs] [--limit N]

The heads (renlian/models/weights/v3fields.npz) never saw these photos: the held-out part of each set
(training/v3fields/data.held_out), and three folders no v3 head trained on at all (LFW, GENKI-4K,
NUAA). Each photo goes through what a detect with face_field=eye_status,emotion,mask,spoofing runs;
small crops (FER-2013, CK+, GENKI) are enlarged first, as in training. Masks are also drawn on held-out
faces from other folders, and OCFR-2022's lower-face occluders (gloves, cups, a phone) warped onto them,
to check that the mask head answers to a mask and not to the source of the mask set's photos. Writes
the v3-fields section of docs/attributes.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bench.attributes import auc, confusion
from bench.datasets import DATA, analyzer, machine, read_bgr, write_section
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.attributes import Attributes
from renlian.vision.crop import similarity_to
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import ARCFACE_TEMPLATE
from renlian.vision.v3fields import EMOTIONS, V3_FIELDS
from training.attributes import data as attributes_data
from training.attributes.occlusion import Occluder, occluders
from training.v3fields import data
from training.v3fields.train import CK_EMOTIONS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "attributes.md"
# Ordinary photos: held-out parts of folders the heads trained on, then folders no v3 head ever saw.
ORDINARY_HELD_OUT = ("utkface", "amls1819_human_cartoon", "scut_fbp5500")
UNSEEN = {"lfw": 3, "genki4k": 8, "nuaa": 4}  # folder: every n-th photo
UTKFACE_LIMIT = 300
# A face mask in the aligned 112 px crop's frame (ArcFace template: eyes at y 52, mouth at y 92): from
# the cheeks below the ears over the nose bridge, down under the chin.
MASK_OUTLINE = np.array(
    [[8, 66], [30, 60], [56, 58], [82, 60], [104, 66], [98, 96], [78, 114], [56, 120], [34, 114], [14, 96]],
    np.float64,
)
MASK_COLOURS = ((230, 216, 173), (236, 236, 236), (40, 40, 40))  # BGR: surgical blue, white, black cloth
# The lower-face occluders training/v3fields never laid on a face (it uses MASK_NEGATIVE_OCCLUDERS).
LOWER_FACE_OCCLUDERS = ("gloves_2", "flower_2", "phone_1", "cup_2", "cup_4", "cup_6")
# Faces cut from real group photos (WIDER FACE validation: parades, crowds, a party), none masked:
# those the size a gate or an enrolment photo gives at least (box width in pixels).
GROUP_PHOTOS = "wider_face_val_sample"
GROUP_FACE_WIDTH = 32


@dataclass(frozen=True)
class Job:
    kind: str  # which measurement the photo serves
    source: str  # the folder it came from
    item: data.Item
    change: str = ""  # "", "mask:<k>" (a drawn mask) or "occluder:<name>"


_analyzer: FaceAnalyzer | None = None
_occluders: dict[str, Occluder] = {}


def _init() -> None:
    global _analyzer, _occluders
    _analyzer = analyzer(threads=1)
    _occluders = {o.name: o for o in occluders() if o.name in LOWER_FACE_OCCLUDERS}


def to_image(analyzer_: FaceAnalyzer, image: BGRImage) -> np.ndarray | None:
    """The 2x3 matrix taking aligned-crop coordinates to the largest face's place in the image."""
    faces = analyzer_.find_faces(image)
    if not faces:
        return None
    return similarity_to(ARCFACE_TEMPLATE, faces[0].kps5)


def draw_mask(image: BGRImage, to: np.ndarray, colour: tuple[int, int, int]) -> BGRImage:
    """A flat face mask with three pleats and ear loops over the nose, mouth and chin."""
    out = image.copy()
    mapped = MASK_OUTLINE @ to[:, :2].T + to[:, 2]
    cv2.fillPoly(out, [mapped.astype(np.int32)], colour, lineType=cv2.LINE_AA)
    shade = tuple(int(c * 0.8) for c in colour)
    scale = float(np.hypot(*to[:, 0]))
    # Three pleats across, then the ear loops.
    for ends in (
        [[18, 76], [94, 76]],
        [[18, 88], [94, 88]],
        [[18, 100], [94, 100]],
        [[8, 66], [0, 56]],
        [[104, 66], [112, 56]],
    ):
        (x0, y0), (x1, y1) = (np.array(ends, np.float64) @ to[:, :2].T + to[:, 2]).astype(int).tolist()
        cv2.line(out, (x0, y0), (x1, y1), shade, max(1, round(scale)), cv2.LINE_AA)
    return out


def draw_occluder(image: BGRImage, to: np.ndarray, occluder: Occluder) -> BGRImage:
    """An OCFR-2022 overlay warped by its anchor points onto the face, as training/attributes does in
    the crop, here straight into the photo."""
    into_crop = np.vstack([similarity_to(occluder.source, occluder.target), [0, 0, 1]])
    matrix = (np.vstack([to, [0, 0, 1]]) @ into_crop)[:2]
    height, width = image.shape[:2]
    warped = cv2.warpAffine(occluder.rgba, matrix, (width, height), flags=cv2.INTER_LINEAR)
    alpha = warped[:, :, 3:4].astype(np.float32) / 255.0
    blended = image.astype(np.float32) * (1 - alpha) + warped[:, :, :3].astype(np.float32) * alpha
    return blended.astype(np.uint8)


def _describe(job: Job) -> Attributes | None:
    assert _analyzer is not None
    image = attributes_data.enlarge(read_bgr(job.item.path))
    if job.change:
        to = to_image(_analyzer, image)
        if to is None:
            return None
        kind, _, which = job.change.partition(":")
        if kind == "mask":
            image = draw_mask(image, to, MASK_COLOURS[int(which)])
        else:
            image = draw_occluder(image, to, _occluders[which])
    faces = _analyzer.detect(image, 1, attributes=V3_FIELDS)
    return faces[0].attributes if faces else None


def _group(path: Path) -> tuple[list[int], list[int]]:
    """The mask calls for one group photo's faces, as they are and once a mask is drawn on each of
    them: the second list has the calls for the faces still found at the same place."""
    assert _analyzer is not None
    image = read_bgr(path)
    fields = frozenset({"mask"})
    faces = [f for f in _analyzer.detect(image, 1000, attributes=fields) if f.box[2] >= GROUP_FACE_WIDTH]
    bare = [f.attributes.mask[0] for f in faces if f.attributes and f.attributes.mask]
    masked = image
    for k, face in enumerate(faces):
        masked = draw_mask(
            masked, similarity_to(ARCFACE_TEMPLATE, face.kps5), MASK_COLOURS[k % len(MASK_COLOURS)]
        )
    found = _analyzer.detect(masked, 1000, attributes=fields)
    drawn = []
    for face in faces:
        centre = face.box[:2] + face.box[2:] / 2
        near = [f for f in found if np.hypot(*(f.box[:2] + f.box[2:] / 2 - centre)) < face.box[2] / 2]
        if near and near[0].attributes and near[0].attributes.mask:
            drawn.append(near[0].attributes.mask[0])
    return bare, drawn


def held(name: str, *, keep: str = "", value: str = "") -> list[data.Item]:
    return [
        item for item in data.items(name) if data.held_out(item) and (not keep or item.labels[keep] == value)
    ]


def jobs(limit: int) -> list[Job]:
    out: list[Job] = []

    def add(kind: str, source: str, items: Sequence[data.Item]) -> None:
        out.extend(Job(kind, source, item) for item in (items[:limit] if limit else items))

    add("eyes", "eye_cew_closed_faces", held("eye_cew_closed_faces"))
    ordinary: dict[str, list[data.Item]] = {
        "utkface": held("utkface")[:UTKFACE_LIMIT],
        "amls1819_human_cartoon": held("amls1819_human_cartoon", keep="class", value="human"),
        "scut_fbp5500": held("scut_fbp5500"),
        "ffhq": held("spoof_stylegan_vs_ffhq_256", keep="spoofing", value="0"),
        "ciplab_real": held("spoof_ciplab_photoshop_160", keep="spoofing", value="0"),
        "lfw": data.items("lfw")[:: UNSEEN["lfw"]],
        "genki4k": data.items("genki4k")[:: UNSEEN["genki4k"]],
        "nuaa": [item for item in data.items("nuaa") if item.labels["label"] == "live"][:: UNSEEN["nuaa"]],
    }
    for source, items in ordinary.items():
        add("ordinary", source, items)
    for name in ("emotion_fer2013", "emotion_jaffe"):
        add("emotion", name, held(name))
    add("emotion", "ck_plus_48", [i for i in held("ck_plus_48") if i.labels["expression"] in CK_EMOTIONS])
    add("mask", "mask_chandrikadeb7_real", held("mask_chandrikadeb7_real"))
    for name in ("spoof_stylegan_vs_ffhq_256", "spoof_ciplab_photoshop_160"):
        add("spoofing", name, held(name))
    # Drawn masks and lower-face occluders on ordinary faces the mask head never trained on.
    changed = [item for source in ("utkface", "lfw", "scut_fbp5500") for item in ordinary[source][:100]]
    changed = changed[:limit] if limit else changed
    for k, item in enumerate(changed):
        out.append(Job("drawn_mask", item.group.split(":")[0], item, f"mask:{k % len(MASK_COLOURS)}"))
        occluder = LOWER_FACE_OCCLUDERS[k % len(LOWER_FACE_OCCLUDERS)]
        out.append(Job("occluder", item.group.split(":")[0], item, f"occluder:{occluder}"))
    return out


Results = list[tuple[Job, Attributes]]


def eyes(results: Results) -> list[str]:
    closed = [a for j, a in results if j.kind == "eyes"]
    opened: dict[str, list[Attributes]] = {}
    for job, attributes in results:
        if job.kind == "ordinary":
            opened.setdefault(job.source, []).append(attributes)

    def score(attributes: Attributes) -> float:
        assert attributes.eye_status is not None
        return (attributes.eye_status[0] + attributes.eye_status[1]) / 2

    def eye_auc(open_faces: list[Attributes], side: int | None = None) -> float:
        pick = score if side is None else (lambda a: a.eye_status[side])
        scores = [pick(a) for a in closed] + [pick(a) for a in open_faces]
        return auc(scores, [False] * len(closed) + [True] * len(open_faces))

    every = [a for faces in opened.values() for a in faces]
    lines = [
        f"Closed: {len(closed)} held-out CEW faces (both eyes closed). Open: {len(every)} ordinary photos "
        "(held-out parts of the training folders; LFW, GENKI-4K and NUAA never trained on). Score: the mean "
        "of the two eyes' probability of being open.",
        "",
        f"AUC closed against open, whole faces: **{eye_auc(every):.3f}** (target 0.95); "
        f"left eye alone {eye_auc(every, 0):.3f}, right eye alone {eye_auc(every, 1):.3f}.",
        "",
        "| open photos from | faces | AUC against CEW closed | called closed (mean < 0.5) |",
        "|---|---|---|---|",
    ]
    for source, faces in opened.items():
        shut = np.mean([score(a) < 0.5 for a in faces])
        lines.append(f"| {source} | {len(faces)} | {eye_auc(faces):.3f} | {shut:.1%} |")
    lines.append(f"| CEW (closed) | {len(closed)} | - | {np.mean([score(a) < 0.5 for a in closed]):.1%} |")
    return lines


def emotions(results: Results, asked: dict[str, int]) -> list[str]:
    lines = [
        "| set (held-out) | photos | face found | accuracy, found faces | accuracy, all photos | target |",
        "|---|---|---|---|---|---|",
    ]
    targets = {"emotion_jaffe": "0.65", "emotion_fer2013": "0.62", "ck_plus_48": "0.85"}
    tables = []
    for name, target in targets.items():
        column = "expression" if name == "ck_plus_48" else "emotion"
        rows = [(j.item, a) for j, a in results if j.kind == "emotion" and j.source == name]
        truth = [CK_EMOTIONS.get(i.labels[column], i.labels[column]) for i, _ in rows]
        predicted = [a.emotion[0] for _, a in rows if a.emotion]
        right = sum(t == p for t, p in zip(truth, predicted, strict=True))
        lines.append(
            f"| {name} | {asked[name]} | {len(rows)} | **{right / len(rows):.1%}** | "
            f"{right / asked[name]:.1%} | {target} |"
        )
        tables += ["", f"{name}:", "", *confusion(truth, predicted, EMOTIONS)]
    return [*lines, *tables]


def masks(results: Results, asked: int) -> list[str]:
    rows = [(j.item, a) for j, a in results if j.kind == "mask"]
    truth = [int(i.labels["mask"]) for i, _ in rows]
    called = [a.mask[0] if a.mask else -1 for _, a in rows]
    right = [t == c for t, c in zip(truth, called, strict=True)]
    lines = [
        f"Held-out web photos: accuracy **{np.mean(right):.1%}** (target 95%) over the {len(rows)} of "
        f"{asked} photos with a face found.",
        "",
        "| mask set part | photos | correct |",
        "|---|---|---|",
    ]
    parts: dict[str, list[bool]] = {}
    for (item, _), ok in zip(rows, right, strict=True):
        parts.setdefault(f"{item.labels['label']}, {item.labels['source_hint']}", []).append(ok)
    lines += [f"| {part} | {len(oks)} | {np.mean(oks):.1%} |" for part, oks in sorted(parts.items())]
    lines += [
        "",
        "Faces from other folders (held out, or never trained on), as they are and with something drawn "
        "over the lower face:",
        "",
        "| faces | n | called masked |",
        "|---|---|---|",
    ]
    for label, kind in (
        ("as they are", "ordinary"),
        ("with a drawn mask", "drawn_mask"),
        ("with an unseen OCFR lower-face occluder (glove, flowers, phone, cups)", "occluder"),
    ):
        attributes = [a for j, a in results if j.kind == kind]
        lines.append(
            f"| {label} | {len(attributes)} | {np.mean([a.mask[0] == 1 for a in attributes if a.mask]):.1%} |"
        )
    return lines


def group_masks(calls: list[tuple[list[int], list[int]]]) -> list[str]:
    bare = [c for b, _ in calls for c in b]
    drawn = [c for _, d in calls for c in d]
    right = [c == 0 for c in bare] + [c == 1 for c in drawn]
    return [
        "",
        f"Faces cut from real group photos ({len(calls)} WIDER FACE validation photos: parades, crowds, a "
        f"party; faces at least {GROUP_FACE_WIDTH} px wide), none of them masked, as they are and again "
        f"with a mask drawn on every face: accuracy **{np.mean(right):.1%}** (target 90%) over "
        f"{len(right)} faces.",
        "",
        "| group-photo faces | n | called masked |",
        "|---|---|---|",
        f"| as they are | {len(bare)} | {np.mean(bare):.1%} |",
        f"| with a drawn mask (still found) | {len(drawn)} | {np.mean(drawn):.1%} |",
    ]


def spoofing(results: Results) -> list[str]:
    lines = [
        "| set (held-out) | real / synthetic faces | AUC | target | called synthetic: real / synthetic |",
        "|---|---|---|---|---|",
    ]
    for name, target in (("spoof_stylegan_vs_ffhq_256", "0.90"), ("spoof_ciplab_photoshop_160", "0.75")):
        rows = [(j.item, a.spoofing) for j, a in results if j.kind == "spoofing" and j.source == name]
        fake = np.array([i.labels["spoofing"] == "1" for i, _ in rows])
        score = np.array([s for _, s in rows], float)
        area = auc(score.tolist(), fake.tolist())
        lines.append(
            f"| {name} | {(~fake).sum()} / {fake.sum()} | **{area:.3f}** | {target} | "
            f"{np.mean(score[~fake] >= 0.5):.1%} / {np.mean(score[fake] >= 0.5):.1%} |"
        )
    ordinary = [a.spoofing for j, a in results if j.kind == "ordinary" and a.spoofing is not None]
    lines += [
        "",
        "Ordinary photos from other folders called synthetic (0.5): "
        f"{np.mean(np.array(ordinary) >= 0.5):.1%} of {len(ordinary)}.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos per source")
    args = parser.parse_args()
    queue = jobs(args.limit)
    with get_context("spawn").Pool(2, initializer=_init) as pool:
        described = list(tqdm(pool.imap(_describe, queue, chunksize=4), total=len(queue)))
        photos = sorted((DATA / GROUP_PHOTOS / "images").glob("*.jpg"))
        groups = list(tqdm(pool.imap(_group, photos), total=len(photos)))
    results = [(job, a) for job, a in zip(queue, described, strict=True) if a is not None]
    asked: dict[str, int] = {}
    for job in queue:
        asked[job.source] = asked.get(job.source, 0) + (job.kind in ("emotion", "mask"))
    lines = [
        f"Measured {machine()} by `python -m bench.v3fields`; {len(results)} of {len(queue)} photos "
        "had a face found.",
        "",
        "### Eye status",
        "",
        *eyes(results),
        "",
        "### Emotion (7 classes)",
        "",
        *emotions(results, asked),
        "",
        "### Mask",
        "",
        *masks(results, asked["mask_chandrikadeb7_real"]),
        *group_masks(groups),
        "",
        "### Spoofing",
        "",
        *spoofing(results),
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "v3fields-results", lines)


if __name__ == "__main__":
    main()
