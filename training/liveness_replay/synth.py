"""Screen replay attacks synthesized from live photos: what a camera sees when a phone or a monitor
showing the photo is held in front of it.

No real replay data is reachable from these machines, so these frames stand in for it, and only as
far as the recipe goes: a model that separates these may still accept a real replay whose screen,
camera or light this recipe does not imitate. Every step is drawn from ranges chosen by eye against
published replay-attack samples (Replay-Attack, OULU-NPU, CASIA-FASD frames as their papers show
them), not fitted to anything:

1. Display: the photo is fitted to the screen (black bars where it does not fill it, as a photo
   viewer shows it) and resampled to the screen's own pixel count, then drawn as RGB sub-pixel
   stripes with dark gaps between them (a pixel grid), of which 10-50% of the full contrast survives
   the camera's optics.
2. Screen colour: a display gamma other than the camera's, a white point shifted towards blue, more
   saturation, and a raised black level (backlight leaking through, room light on the glass).
3. Recapture: the grid is warped (slight rotation, tilt and scale) straight down to the camera's
   sensor's pixels (twice the frame's) with bilinear sampling, which aliases the grid into moire as
   a sensor does, then blurred (lens) and area-averaged to a 640x480 frame; the phone kind
   shows a dark bezel and the room around it, the monitor kind fills most of the frame.
4. Glare (a soft specular blob and a faint sheen gradient), refresh banding (a slow horizontal
   brightness ripple, as a rolling shutter meets PWM dimming), lens blur, sensor noise, JPEG.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

KINDS = ("replay_phone", "replay_monitor")
FRAME = (640, 480)  # width, height: a webcam frame, as NUAA's
# The scene is drawn on a sensor this many times finer than FRAME, then area-averaged down, as a
# phone's 12-megapixel capture is scaled to a video frame: that averaging removes most of the
# sub-pixel pattern and leaves its low-frequency beat (the moire) behind.
SENSOR = 2


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _screen_colour(rgb: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Content 0-1 as the panel emits it."""
    gamma = _u(rng, 0.8, 1.3)
    out = np.power(np.clip(rgb, 0, 1), gamma)
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * _u(rng, 1.0, 1.35)
    white = np.array([_u(rng, 0.88, 1.0), _u(rng, 0.95, 1.02), _u(rng, 1.0, 1.15)], np.float32)
    black = _u(rng, 0.03, 0.14)
    return np.asarray(black + (1 - black) * np.clip(out * white, 0, 1), np.float32)


def _pixel_grid(
    u: NDArray[np.float32], v: NDArray[np.float32], rng: np.random.Generator
) -> NDArray[np.float32]:
    """The sub-pixel mask at screen coordinates (u, v), one value per colour channel: each screen pixel
    is 3 vertical stripes (R, G, B) over a cell whose bottom row is a dark gap. Point-sampled at the
    sensor's pixels, so a grid finer than the sensor aliases into moire, as on a real sensor. Only a
    share of the full contrast is kept: the camera's optics blur most of the pattern away."""
    fill = _u(rng, 0.75, 0.95)  # the share of the cell's height that emits light
    contrast = _u(rng, 0.1, 0.5)
    stripe = np.floor((u - np.floor(u)) * 3).astype(np.int64)
    lit = (v - np.floor(v)) < fill
    mask = np.stack([(stripe == c) & lit for c in range(3)], axis=-1).astype(np.float32)
    # A stripe is a third of the cell and lit for `fill` of it: keep the mean brightness at 1.
    return np.asarray(1 - contrast + contrast * mask * 3 / fill, np.float32)


def replay(content: NDArray[np.uint8], rng: np.random.Generator, kind: str) -> NDArray[np.uint8]:
    """One camera frame of `content` (a BGR photo of a live face) shown on a screen."""
    width, height = FRAME[0] * SENSOR, FRAME[1] * SENSOR
    rgb = np.asarray(cv2.cvtColor(content, cv2.COLOR_BGR2RGB), np.float32) / np.float32(255)
    if kind == "replay_phone":
        # A phone held upright; the camera sees its screen at about 0.6 to 1.5 camera pixels per
        # screen pixel, i.e. a screen 200 to 400 camera pixels wide.
        aspect = _u(rng, 0.5, 0.75)
        screen_h = int(_u(rng, 0.75, 1.1) * height)
    else:
        aspect = _u(rng, 1.25, 1.6)
        screen_h = int(_u(rng, 0.85, 1.2) * height)
    screen_w = int(screen_h * aspect)
    # A photo viewer fits the whole photo on the screen, with black bars on the sides it does not fill.
    ch, cw = rgb.shape[:2]
    if cw / ch > aspect:
        canvas = np.zeros((int(cw / aspect), cw, 3), np.float32)
        top = (canvas.shape[0] - ch) // 2
        canvas[top : top + ch] = rgb
    else:
        canvas = np.zeros((ch, int(ch * aspect), 3), np.float32)
        left = (canvas.shape[1] - cw) // 2
        canvas[:, left : left + cw] = rgb
    rgb = canvas
    pitch = _u(rng, 0.6, 1.6) * SENSOR  # sensor pixels per screen pixel (0.6-1.6 frame pixels)
    px_h, px_w = max(int(screen_h / pitch), 8), max(int(screen_w / pitch), 8)
    shown = np.asarray(cv2.resize(rgb, (px_w, px_h), interpolation=cv2.INTER_AREA), np.float32)
    panel = _screen_colour(shown, rng)

    # The room behind: a blurred, dimmed copy of the photo lifted by room light.
    # (Blurred small, then enlarged: the same look at a fraction of the cost.)
    room = cv2.resize(cv2.GaussianBlur(cv2.resize(rgb, (40, 30)), (0, 0), 1.6), (width, height))
    frame = np.asarray(room * _u(rng, 0.3, 0.8) + _u(rng, 0.05, 0.3), np.float32)
    ph, pw = panel.shape[:2]
    bezel = (
        int(_u(rng, 0.03, 0.08) * screen_w) if kind == "replay_phone" else int(_u(rng, 0, 0.03) * screen_w)
    )
    cx, cy = width / 2 + _u(rng, -0.08, 0.08) * width, height / 2 + _u(rng, -0.06, 0.06) * height
    angle = np.deg2rad(_u(rng, -8, 8))
    tilt = _u(rng, -0.06, 0.06)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32)
    half = np.array([screen_w / 2, screen_h / 2], np.float32)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)

    def placed(extra: float) -> NDArray[np.float32]:
        pts = corners * (half + extra)
        pts[:, 0] *= 1 + tilt * corners[:, 1]  # a keystone: one edge nearer the camera
        return np.asarray(pts @ rot.T + np.array([cx, cy], np.float32), np.float32)

    if bezel:
        case = np.array(placed(bezel), np.int32)
        cv2.fillConvexPoly(frame, case, (_u(rng, 0.02, 0.12),) * 3, lineType=cv2.LINE_AA)
    source = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    warp = cv2.getPerspectiveTransform(source, placed(0))
    screen = np.full_like(frame, -1.0)
    cv2.warpPerspective(
        panel, warp, (width, height), dst=screen, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT
    )
    inside = screen[..., 0] >= 0
    # Where each sensor pixel lands on the screen, in screen pixels, for the sub-pixel mask.
    ys, xs = np.nonzero(inside)
    points = np.stack([xs, ys], axis=-1).astype(np.float32)[None]
    uv = cv2.perspectiveTransform(points, np.linalg.inv(warp))[0]
    frame[ys, xs] = screen[ys, xs] * _pixel_grid(uv[:, 0], uv[:, 1], rng)

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gx, gy, sigma = _u(rng, 0, width), _u(rng, 0, height), _u(rng, 40, 200) * SENSOR
    glare = _u(rng, 0, 0.35) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * sigma**2))
    sheen = _u(rng, 0, 0.08) * (xx / width if rng.random() < 0.5 else yy / height)
    frame = frame + (glare + sheen)[..., None]
    period = _u(rng, 12, 90) * SENSOR
    frame *= (1 + _u(rng, 0.0, 0.05) * np.sin(2 * np.pi * yy / period + _u(rng, 0, 6.3)))[..., None]
    frame = cv2.GaussianBlur(frame, (0, 0), _u(rng, 0.3, 1.1) * SENSOR)
    frame = cv2.resize(frame, FRAME, interpolation=cv2.INTER_AREA)
    exposure = _u(rng, 0.85, 1.15)
    frame = frame * 255 * exposure + rng.normal(0, _u(rng, 1, 4), frame.shape)
    bgr = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    quality = int(rng.integers(60, 96))
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), np.uint8)
