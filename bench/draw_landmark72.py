"""Draw renlian's landmark72 points, numbered, on the committed NASA portrait: docs/landmark72.jpg.

    python -m bench.draw_landmark72

The picture is how the index table in renlian/vision/landmarks.py was checked by eye, and how a user
can check that the layout is the one their client code expects.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from bench.datasets import analyzer, read_bgr
from renlian.vision.landmarks import LANDMARK72_FROM_106, project

PHOTO = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"
OUTPUT = Path("docs/landmark72.jpg")
SCALE = 6
GROUPS = (  # index range, colour (BGR), name
    (range(0, 13), (0, 200, 255), "contour"),
    (range(13, 22), (0, 255, 0), "left eye"),
    (range(22, 30), (255, 128, 0), "left brow"),
    (range(30, 39), (0, 255, 0), "right eye"),
    (range(39, 47), (255, 128, 0), "right brow"),
    (range(47, 58), (255, 0, 255), "nose"),
    (range(58, 72), (0, 0, 255), "mouth"),
)


def main() -> None:
    image = read_bgr(PHOTO)
    face = analyzer().detect(image, 1, landmarks=True)[0]
    assert face.landmarks106 is not None
    points = project(face.landmarks106, LANDMARK72_FROM_106)
    x, y, w, h = (int(v) for v in face.box)
    margin = 25
    x0, y0 = max(0, x - margin), max(0, y - margin)
    crop = image[y0 : y + h + margin, x0 : x + w + margin]
    canvas = cv2.resize(crop, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
    for indices, colour, _ in GROUPS:
        for i in indices:
            px, py = (int((points[i][0] - x0) * SCALE), int((points[i][1] - y0) * SCALE))
            cv2.circle(canvas, (px, py), 5, colour, -1)
            cv2.putText(canvas, str(i), (px + 6, py - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3)
            cv2.putText(canvas, str(i), (px + 6, py - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 1)
    cv2.imwrite(str(OUTPUT), canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {OUTPUT} ({canvas.shape[1]}x{canvas.shape[0]})")


if __name__ == "__main__":
    main()
