"""Images by URL: only allowed prefixes are fetched, and every download is bounded.

Real HTTP servers on 127.0.0.1, no mocks: each counts the requests that reach it, so "refused
without any network activity" is checked where it matters, on the server.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from renlian.core.fetch import ImageFetcher, parse_allow_list
from renlian.errors import ErrorCode, FaceApiError
from renlian.settings import Settings
from renlian.vision.image import ImageLimits

LIMITS = ImageLimits(max_pixels=40_000_000, max_side=12_000, min_side=16)
TIMEOUT = 0.5
CAP = 4096


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((24, 32, 3), (10, 200, 30), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png()
assert len(PNG) < CAP

Route = Callable[[BaseHTTPRequestHandler], None]


class PhotoServer:
    """An HTTP/1.1 server on 127.0.0.1 with a handler per path; `hits` lists the paths requested."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.release = threading.Event()  # ends the slow handlers at teardown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = server.routes.get(self.path)
                try:
                    if route is None:
                        send(self, 404, b"not found")
                    else:
                        route(self)
                except OSError:
                    pass  # the client hung up, as the fetcher does on purpose

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler: send(handler, status, b"", Location=location)


@pytest.fixture
def server() -> Iterator[PhotoServer]:
    photos = PhotoServer()
    yield photos
    photos.close()


@pytest.fixture
def outside() -> Iterator[PhotoServer]:
    """A second server that no prefix allows: it must never see a request."""
    other = PhotoServer()
    other.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    yield other
    assert other.hits == []
    other.close()


def fetcher_for(*prefixes: str, timeout: float = TIMEOUT, cap: int = CAP) -> ImageFetcher:
    return ImageFetcher(prefixes, timeout, cap)


def refusal(fetcher: ImageFetcher, url: str) -> str:
    """The detail of the 222204 that fetching `url` answers."""
    with pytest.raises(FaceApiError) as caught:
        fetcher.fetch(url)
    assert caught.value.error is ErrorCode.IMAGE_URL_DOWNLOAD_FAIL
    assert caught.value.v3() == (222204, "image_url_download_fail")
    assert caught.value.detail
    return caught.value.detail


def test_a_url_under_an_allowed_prefix_is_fetched_and_decoded(server: PhotoServer) -> None:
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    fetcher = fetcher_for(f"{server.base}/photos/")
    data, pixels = fetcher.fetch_image(f"{server.base}/photos/face.png", LIMITS)
    assert data == PNG
    assert pixels.shape == (24, 32, 3)
    assert tuple(pixels[0, 0]) == (30, 200, 10)  # BGR
    assert server.hits == ["/photos/face.png"]


def test_scheme_and_host_are_compared_case_blind_and_the_default_port_filled_in(server: PhotoServer) -> None:
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    fetcher = fetcher_for(f"HTTP://127.0.0.1:{server.port}/photos/")
    assert fetcher.fetch(f"http://127.0.0.1:{server.port}/photos/face.png#fragment") == PNG
    assert fetcher.fetch(f"Http://127.0.0.1:{server.port}/photos/face.png") == PNG
    default = fetcher_for("http://example.com:80/photos/", "https://example.com/")
    default.check("http://example.com/photos/a.jpg")
    default.check("https://EXAMPLE.com:443/a.jpg")
    default.check("http://example.com:/photos/a.jpg")  # an empty port is the default one
    fetcher_for("http://[::1]:8080/photos/").check("http://[0:0::1]:8080/photos/a.png")


def test_non_ascii_path_is_percent_encoded(server: PhotoServer) -> None:
    server.routes["/photos/%E7%85%A7.png"] = lambda handler: send(handler, 200, PNG)
    assert fetcher_for(f"{server.base}/photos/").fetch(f"{server.base}/photos/照.png") == PNG


def test_a_url_outside_the_prefixes_is_refused_before_any_request(server: PhotoServer) -> None:
    server.routes["/secret"] = lambda handler: send(handler, 200, PNG)
    fetcher = fetcher_for(f"{server.base}/photos/")
    assert "RENLIAN_IMAGE_URL_ALLOW" in refusal(fetcher, f"{server.base}/secret")
    assert "RENLIAN_IMAGE_URL_ALLOW" in refusal(fetcher, f"{server.base}/photo")
    assert "RENLIAN_IMAGE_URL_ALLOW" in refusal(fetcher, f"https://127.0.0.1:{server.port}/photos/a.png")
    assert server.hits == []


def test_an_empty_allow_list_refuses_everything_without_a_request(
    server: PhotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RENLIAN_IMAGE_URL_ALLOW", raising=False)
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    for fetcher in (
        fetcher_for(),
        Settings().image_fetcher(),
        Settings(image_url_allow=" , ").image_fetcher(),
    ):
        detail = refusal(fetcher, f"{server.base}/photos/face.png")
        assert detail == "no URL is fetched: RENLIAN_IMAGE_URL_ALLOW is empty"
    assert server.hits == []


def test_the_allow_list_is_read_from_the_environment(
    server: PhotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    monkeypatch.setenv("RENLIAN_IMAGE_URL_ALLOW", f"https://cdn.example.com/x/, {server.base}/photos/")
    monkeypatch.setenv("RENLIAN_IMAGE_URL_TIMEOUT_SECONDS", "0.75")
    monkeypatch.setenv("RENLIAN_IMAGE_URL_MAX_BYTES", "1000")
    settings = Settings()
    assert settings.image_url_timeout_seconds == 0.75
    fetcher = settings.image_fetcher()
    assert (fetcher.timeout, fetcher.max_bytes) == (0.75, 1000)
    assert fetcher.fetch(f"{server.base}/photos/face.png") == PNG


def test_defaults_fetch_nothing_within_5_s_and_10_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALLOW", "TIMEOUT_SECONDS", "MAX_BYTES"):
        monkeypatch.delenv(f"RENLIAN_IMAGE_URL_{name}", raising=False)
    settings = Settings()
    assert settings.image_url_allow == ""
    assert settings.image_url_timeout_seconds == 5.0
    assert settings.image_url_max_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize(
    "prefix",
    [
        "ftp://example.com/",
        "example.com/photos/",
        "http://user:pw@example.com/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "http://example.com/photos/../",
        "http://example.com/?q=1",
        "http://example.com/#f",
        "http://exa mple.com/",
    ],
)
def test_a_bad_prefix_stops_the_settings(prefix: str) -> None:
    with pytest.raises(ValueError, match="RENLIAN_IMAGE_URL_ALLOW"):
        parse_allow_list(f"http://ok.example.com/, {prefix}")
    with pytest.raises(ValidationError):
        Settings(image_url_allow=prefix)


def test_user_names_and_passwords_are_refused_and_never_echoed(
    server: PhotoServer, outside: PhotoServer
) -> None:
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    fetcher = fetcher_for(f"{server.base}/photos/", f"http://127.0.0.1:{server.port}")
    for url in (
        # The allowed address as a user name in front of another host: the classic trick.
        f"http://127.0.0.1:{server.port}@127.0.0.1:{outside.port}/photos/face.png",
        f"http://admin:hunter2@127.0.0.1:{server.port}/photos/face.png",
        f"http://admin@127.0.0.1:{server.port}/photos/face.png",
    ):
        detail = refusal(fetcher, url)
        assert "user name or password" in detail
        assert "hunter2" not in detail and "admin" not in detail
    # An '@' after the host is part of the path, on the allowed host: asked of that host (404 there).
    path = f"/photos/@127.0.0.1:{outside.port}/photos/face.png"
    assert refusal(fetcher, server.base + path) == "the server answered HTTP status 404"
    assert server.hits == [path]


@pytest.mark.parametrize(
    "path",
    [
        "/photos/../secret",
        "/photos/./../secret",
        "/photos/%2e%2e/secret",
        "/photos/.%2E/secret",
        "/photos/..%2fsecret",
        "/photos/..%5csecret",
        "/photos/..;/secret",
        "/photos/..",
    ],
)
def test_dot_segments_cannot_climb_out_of_the_prefix(server: PhotoServer, path: str) -> None:
    server.routes["/secret"] = lambda handler: send(handler, 200, PNG)
    detail = refusal(fetcher_for(f"{server.base}/photos/"), server.base + path)
    assert "path" in detail
    assert server.hits == []


def test_ports_are_compared_as_numbers_not_as_text(server: PhotoServer) -> None:
    # Without a path the prefix is the whole origin; "host:8080" is a string prefix of "host:80800".
    fetcher = fetcher_for(f"http://127.0.0.1:{server.port}", "http://127.0.0.1:8080/photos/")
    for url in (
        f"http://127.0.0.1:{server.port}0/photos/a.png",
        f"http://127.0.0.1:{server.port}1/",
        "http://127.0.0.1:80800/photos/a.png",
        "http://127.0.0.1:8080.evil.example/photos/a.png",
        "http://127.0.0.1:08080x/photos/a.png",
        "http://127.0.0.1:８０８０/photos/a.png",  # full-width digits
        "http://127.0.0.1/photos/a.png",  # port 80, not 8080
        f"http://127.0.0.1:{server.port}.evil.example/",
    ):
        with pytest.raises(FaceApiError) as caught:
            fetcher.check(url)
        assert caught.value.error is ErrorCode.IMAGE_URL_DOWNLOAD_FAIL, url
    fetcher.check("http://127.0.0.1:08080/photos/a.png")  # the same port, written with a leading zero
    assert server.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}\\@evil.example/photos/a.png",
        "http://127.0.0.1:{port}/photos\\..\\secret",
        " http://127.0.0.1:{port}/photos/a.png",
        "http://127.0.0.1:{port}/photos/a.png\n",
        "http://127.0.0.1:{port}/photos/a\t.png",
        "http://127.0.0.1:{port}/photos/a\x00.png",
        "http://127.0.0.1:{port}/photos/a b.png",
        "http://ｅxample.com/photos/a.png",  # full-width 'e': NFKC would make it example.com
        "http://xn--e-ufa.com/photos/a.png",  # not the allowed host, whatever it decodes to
        "http://%31%32%37.0.0.1:{port}/photos/a.png",
        "http://[::1]:{port}/photos/a.png",
        "http://[::1%25lo]:{port}/photos/a.png",
        "http:/127.0.0.1:{port}/photos/a.png",
        "http:127.0.0.1:{port}/photos/a.png",
        "//127.0.0.1:{port}/photos/a.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/photos/a.png",
        "",
    ],
)
def test_urls_that_parsers_disagree_on_are_refused(server: PhotoServer, url: str) -> None:
    fetcher = fetcher_for(f"{server.base}/photos/", "http://example.com/photos/")
    refusal(fetcher, url.format(port=server.port))
    assert server.hits == []


def test_a_redirect_inside_the_allow_list_is_followed(server: PhotoServer) -> None:
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    server.routes["/photos/old.png"] = redirect("face.png", 301)
    server.routes["/photos/older.png"] = redirect(f"{server.base}/photos/old.png", 307)
    fetcher = fetcher_for(f"{server.base}/photos/")
    assert fetcher.fetch(f"{server.base}/photos/older.png") == PNG
    assert server.hits == ["/photos/older.png", "/photos/old.png", "/photos/face.png"]


def test_a_redirect_out_of_the_allow_list_is_refused(server: PhotoServer, outside: PhotoServer) -> None:
    server.routes["/secret"] = lambda handler: send(handler, 200, PNG)
    server.routes["/photos/away.png"] = redirect(f"{outside.base}/photos/face.png")
    server.routes["/photos/up.png"] = redirect("../secret")
    server.routes["/photos/creds.png"] = redirect(f"http://u:p@127.0.0.1:{server.port}/photos/face.png")
    fetcher = fetcher_for(f"{server.base}/photos/")
    assert "redirect" in refusal(fetcher, f"{server.base}/photos/away.png")
    assert "redirect" in refusal(fetcher, f"{server.base}/photos/up.png")
    assert "user name or password" in refusal(fetcher, f"{server.base}/photos/creds.png")
    assert server.hits == ["/photos/away.png", "/photos/up.png", "/photos/creds.png"]


def test_at_most_three_redirects_are_followed(server: PhotoServer) -> None:
    server.routes["/photos/loop.png"] = redirect("/photos/loop.png")
    server.routes["/photos/bare.png"] = lambda handler: send(handler, 302, b"")
    fetcher = fetcher_for(f"{server.base}/photos/")
    assert "more than 3" in refusal(fetcher, f"{server.base}/photos/loop.png")
    assert server.hits == ["/photos/loop.png"] * 4
    assert "without a Location" in refusal(fetcher, f"{server.base}/photos/bare.png")


def test_a_declared_size_over_the_cap_is_refused_before_the_body(server: PhotoServer) -> None:
    server.routes["/photos/big.png"] = lambda handler: send(handler, 200, PNG + bytes(CAP))
    detail = refusal(fetcher_for(f"{server.base}/photos/"), f"{server.base}/photos/big.png")
    assert f"larger than {CAP} bytes" in detail
    assert "Content-Length" in detail


def test_a_streamed_body_is_cut_off_at_the_cap(server: PhotoServer) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(1000):  # far more than the cap, if anyone read it all
            handler.wfile.write(b"400\r\n" + bytes(1024) + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    def until_close(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")  # no length: the body ends when the connection does
        handler.end_headers()
        handler.close_connection = True
        for _ in range(1000):
            handler.wfile.write(bytes(1024))

    server.routes["/photos/chunked.png"] = chunked
    server.routes["/photos/stream.png"] = until_close
    fetcher = fetcher_for(f"{server.base}/photos/")
    for name in ("chunked.png", "stream.png"):
        detail = refusal(fetcher, f"{server.base}/photos/{name}")
        assert detail == f"the image is larger than {CAP} bytes"


def test_a_chunked_body_under_the_cap_is_fetched(server: PhotoServer) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(PNG), 100):
            piece = PNG[start : start + 100]
            handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server.routes["/photos/chunked.png"] = chunked
    assert fetcher_for(f"{server.base}/photos/").fetch(f"{server.base}/photos/chunked.png") == PNG


def test_a_slow_server_is_timed_out(server: PhotoServer) -> None:
    def silent(handler: BaseHTTPRequestHandler) -> None:
        server.release.wait(5)

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        # A byte every 0.1 s: each read is quick, so only a deadline for the whole download stops it.
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        while not server.release.wait(0.1):
            handler.wfile.write(b"X-Slow: x\r\n"[:1])
            handler.wfile.flush()

    def slow_body(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(CAP))
        handler.end_headers()
        while not server.release.wait(0.1):
            handler.wfile.write(b"\x00")
            handler.wfile.flush()

    server.routes.update({"/photos/silent.png": silent, "/photos/trickle.png": trickle})
    server.routes["/photos/slow_body.png"] = slow_body
    fetcher = fetcher_for(f"{server.base}/photos/")
    for name in ("silent.png", "trickle.png", "slow_body.png"):
        started = time.monotonic()
        detail = refusal(fetcher, f"{server.base}/photos/{name}")
        elapsed = time.monotonic() - started
        assert detail == f"the download timed out after {TIMEOUT:g} s", name
        # Per-read timeouts alone would wait forever on the trickle; the deadline is for the whole.
        assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + 1.0, (name, elapsed)
    # The downloads' threads end too: their sockets were shut down at the deadline.
    give_up = time.monotonic() + 2
    while any(thread.name == "renlian-image-url" for thread in threading.enumerate()):
        assert time.monotonic() < give_up, "a download thread outlived its deadline"
        time.sleep(0.01)


def test_http_errors_and_failed_connections_say_why(server: PhotoServer) -> None:
    server.routes["/photos/teapot.png"] = lambda handler: send(handler, 418, b"short and stout")
    server.routes["/photos/empty.png"] = lambda handler: send(handler, 200, b"")

    def broken(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(PNG)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        handler.wfile.write(PNG[:50])

    server.routes["/photos/broken.png"] = broken
    fetcher = fetcher_for(f"{server.base}/photos/")
    assert refusal(fetcher, f"{server.base}/photos/missing.png") == "the server answered HTTP status 404"
    assert refusal(fetcher, f"{server.base}/photos/teapot.png") == "the server answered HTTP status 418"
    assert "empty" in refusal(fetcher, f"{server.base}/photos/empty.png")
    assert "broke off" in refusal(fetcher, f"{server.base}/photos/broken.png")

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nobody = f"http://127.0.0.1:{port}/photos/"
    assert refusal(fetcher_for(nobody), nobody + "a.png").startswith("the connection failed")


def test_https_is_spoken_and_verified(server: PhotoServer) -> None:
    # The photo server speaks plain HTTP: the TLS handshake fails, and says so.
    server.routes["/photos/face.png"] = lambda handler: send(handler, 200, PNG)
    url = f"https://127.0.0.1:{server.port}/photos/"
    assert "TLS" in refusal(fetcher_for(url), url + "face.png")


def test_bytes_that_are_not_an_image_get_the_image_error_not_222204(server: PhotoServer) -> None:
    server.routes["/photos/notes.txt"] = lambda handler: send(handler, 200, b"just some text, not a picture")
    fetcher = fetcher_for(f"{server.base}/photos/")
    with pytest.raises(FaceApiError) as caught:
        fetcher.fetch_image(f"{server.base}/photos/notes.txt", LIMITS)
    assert caught.value.error is ErrorCode.IMAGE_FORMAT_ERROR
    assert caught.value.error.code == 216201
    assert caught.value.v3() == (222203, "image check fail")
