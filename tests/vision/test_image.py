"""Image intake: every way a request's image can be wrong maps to Baidu's code, before any model runs."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.image import ImageLimits, decode_image, split_images
from tests.conftest import b64

LIMITS = ImageLimits(max_pixels=40_000_000, max_side=12_000, min_side=16)


def encode_pil(image: Image.Image, fmt: str, **options: object) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def code_of(text: str, limits: ImageLimits = LIMITS) -> int:
    with pytest.raises(FaceApiError) as caught:
        decode_image(text, limits)
    return caught.value.error.code


def test_png_jpeg_and_bmp_decode_to_bgr(astronaut: np.ndarray) -> None:
    for ext in (".png", ".jpg", ".bmp"):
        pixels = decode_image(b64(astronaut, ext), LIMITS)
        assert pixels.shape == astronaut.shape
        assert pixels.dtype == np.uint8
        # Lossless formats round-trip exactly; JPEG only approximately.
        assert np.abs(pixels.astype(int) - astronaut.astype(int)).mean() < (3 if ext == ".jpg" else 1e-9)


def test_grey_and_alpha_images_become_three_channels() -> None:
    grey = Image.fromarray(np.full((40, 30), 128, np.uint8), mode="L")
    rgba = Image.fromarray(np.full((40, 30, 4), 200, np.uint8), mode="RGBA")
    assert decode_image(encode_pil(grey, "PNG"), LIMITS).shape == (40, 30, 3)
    assert decode_image(encode_pil(rgba, "PNG"), LIMITS).shape == (40, 30, 3)


def test_empty_and_undecodable_base64_are_216200() -> None:
    assert code_of("") == ErrorCode.EMPTY_IMAGE.code
    assert code_of("   ") == ErrorCode.EMPTY_IMAGE.code
    assert code_of("not base64 at all!!") == ErrorCode.EMPTY_IMAGE.code
    assert code_of("abc") == ErrorCode.EMPTY_IMAGE.code  # bad padding


def test_gif_and_other_formats_are_216201() -> None:
    gif = encode_pil(Image.new("RGB", (64, 64), "white"), "GIF")
    webp = encode_pil(Image.new("RGB", (64, 64), "white"), "WEBP")
    text = base64.b64encode(b"just some text, not a picture").decode()
    for encoded in (gif, webp, text):
        assert code_of(encoded) == ErrorCode.IMAGE_FORMAT_ERROR.code


def test_truncated_png_is_refused(astronaut: np.ndarray) -> None:
    data = base64.b64decode(b64(astronaut, ".png"))
    truncated = base64.b64encode(data[: len(data) // 3]).decode()
    assert code_of(truncated) == ErrorCode.IMAGE_FORMAT_ERROR.code


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # 8000 x 6000 one-bit pixels compress to a few kilobytes but would decode to 144 MB of BGR.
    bomb = encode_pil(Image.new("1", (8000, 6000)), "PNG", optimize=True)
    assert len(bomb) < 100_000
    assert code_of(bomb) == ErrorCode.IMAGE_SIZE_ERROR.code


def test_absurd_and_tiny_dimensions_are_216202() -> None:
    tall = encode_pil(Image.new("L", (20, 13_000)), "PNG")
    tiny = encode_pil(Image.new("RGB", (8, 8)), "PNG")
    assert code_of(tall) == ErrorCode.IMAGE_SIZE_ERROR.code
    assert code_of(tiny) == ErrorCode.IMAGE_SIZE_ERROR.code


def test_exif_orientation_is_applied() -> None:
    # A landscape JPEG whose EXIF says "rotate 90 degrees clockwise to view" must come out portrait,
    # with what was the left edge (red) on top.
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode_pil(image, "JPEG", exif=exif.tobytes(), quality=95), LIMITS)
    assert decoded.shape[:2] == (100, 60)
    top_row_bgr = decoded[5, 30]
    assert top_row_bgr[2] > 200 and top_row_bgr[0] < 60


def test_data_uri_header_line_breaks_and_spaces_are_tolerated(astronaut: np.ndarray) -> None:
    plain = b64(astronaut, ".png")
    wrapped = "data:image/png;base64," + "\n".join(plain[i : i + 76] for i in range(0, len(plain), 76))
    assert decode_image(wrapped, LIMITS).shape == astronaut.shape
    # A form body with an unescaped '+' arrives as a space.
    assert decode_image(plain.replace("+", " "), LIMITS).shape == astronaut.shape


def test_split_images_keeps_empty_positions() -> None:
    assert list(split_images("a,b")) == ["a", "b"]
    assert list(split_images("a,")) == ["a", ""]


def test_split_images_keeps_data_uri_headers_with_their_images() -> None:
    texts = split_images("data:image/png;base64,AAAA,BBBB, data:image/jpeg;base64,CCCC")
    assert list(texts) == ["data:image/png;base64,AAAA", "BBBB", " data:image/jpeg;base64,CCCC"]
    assert len(texts) == 3 and texts[-1].endswith("CCCC") and texts[:2] == list(texts)[:2]
    # A header with no image after it stays an (undecodable) image of its own.
    assert list(split_images("AAAA,data:image/png;base64")) == ["AAAA", "data:image/png;base64"]
