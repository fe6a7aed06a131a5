"""Cosine similarity -> Baidu's 0-100 similarity score, in one place.

Baidu recommends treating 80 as "the same person". The map is piecewise linear through anchors
measured by bench/calibrate.py on the shared identity sets (celeb_aligned112, orl_faces,
yale_faces): a score of 30, 60, 70 and 80 sits at the cosine that impostor pairs exceed 50%, 10%,
1% and 0.1% of the time (the worst of the three sets, rounded up); 90 at the median genuine cosine
of the hardest set; -1 maps to 0 and 1 to 100. So two strangers typically score about 30 and a
typical pair of photos of one person about 90, as on Baidu's service, and 80 keeps the false-accept
rate at or below 0.1%. Each embedder has its own anchors because their cosine scales differ.
docs/accuracy.md gives the resulting FAR and FRR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Calibration:
    cosines: tuple[float, ...]
    scores: tuple[float, ...] = (0.0, 30.0, 60.0, 70.0, 80.0, 90.0, 100.0)

    def score(self, cosine: float) -> float:
        return round(float(np.interp(cosine, self.cosines, self.scores)), 4)


CALIBRATIONS: dict[str, Calibration] = {
    "mbf": Calibration((-1.0, 0.0415, 0.1422, 0.2270, 0.2762, 0.4815, 1.0)),
    "sface": Calibration((-1.0, 0.1280, 0.2422, 0.3398, 0.4169, 0.5947, 1.0)),
}


def similarity_score(cosine: float, recognizer: str) -> float:
    return CALIBRATIONS[recognizer].score(cosine)
