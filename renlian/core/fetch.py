"""Images by URL (Baidu v3's image_type=URL), fetched only from addresses the operator allowed.

A server that downloads whatever URL a client names is a proxy into the network it sits in: cloud
metadata endpoints, admin pages on localhost, hosts behind the firewall. So nothing is fetched unless
the URL lies under a prefix listed in RENLIAN_IMAGE_URL_ALLOW, which is empty by default.

The allow-list is matched on the URL as parsed, never on the raw string, and the parsed form is also
what the request is built from, so the address checked is the address connected to. Anything that
different parsers could read differently is refused rather than interpreted: user names and
passwords (`http://allowed@evil/`), backslashes, whitespace and control characters, non-ASCII or
percent-encoded hosts, ports that are not plain numbers, and dot segments in the path, encoded or
not. Scheme, host and port must equal the prefix's (after lower-casing and filling in the default
port), so "http://host:8080" cannot admit "http://host:80800"; only the path is compared as a prefix.

A download is bounded in time (one deadline for connect, redirects and body together), in size
(a declared Content-Length over the cap is refused before the body is read, and a streamed body is
cut off at the cap), and in where it goes: redirects are followed by hand, at most MAX_REDIRECTS of
them, each target checked against the allow-list like the first URL. No proxy settings from the
environment, no cookies. Every refusal is 222204 with error_detail saying why; the detail never
repeats the URL, which may carry credentials or signed query strings.

The fetched bytes then go through vision.image.decode_bytes, the same checks as a base64 image, so a
URL that serves something other than an image gets the image error, not 222204.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.image import BGRImage, ImageLimits, decode_bytes

ALLOW_SETTING = "RENLIAN_IMAGE_URL_ALLOW"
MAX_REDIRECTS = 3

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
# Host names in their plain ASCII form: letters, digits, hyphens and underscores, in dot-separated
# labels (an IPv4 address is one too). Percent signs, brackets, IDNs and empty labels do not match.
_HOST_NAME = re.compile(r"(?:[a-z0-9_-]+\.)*[a-z0-9_-]+")
# Encoded '.', '/' and '\' in a path: servers that decode them would see segments the check did not.
_ENCODED_SEPARATOR = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)
# Every printable ASCII character is left as it is; only non-ASCII text is percent-encoded (UTF-8).
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


def _refusal(detail: str) -> FaceApiError:
    return FaceApiError(ErrorCode.IMAGE_URL_DOWNLOAD_FAIL, detail)


@dataclass(frozen=True)
class _Url:
    """A URL reduced to what is compared and what is requested: nothing else of it is ever used."""

    scheme: str  # "http" or "https"
    host: str  # lower-case; an IPv6 address without its brackets
    port: int  # explicit, the scheme's default filled in
    path: str  # starts with "/"; non-ASCII characters percent-encoded
    query: str  # "" or "?..."

    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def text(self) -> str:
        return f"{self.scheme}://{self.netloc()}{self.path}{self.query}"

    def under(self, prefix: _Url) -> bool:
        """Same origin, compared part by part (so port 8080 is not a prefix of 80800), and the path
        starting with the prefix's: "/photos" admits "/photos-old/", "/photos/" only the folder."""
        same_origin = (self.scheme, self.host, self.port) == (prefix.scheme, prefix.host, prefix.port)
        return same_origin and self.path.startswith(prefix.path)


def _parse(url: str) -> _Url:
    """The URL's parts, or ValueError saying why it is refused. Refuses rather than guesses."""
    if not url:
        raise ValueError("it is empty")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError("it contains whitespace or control characters")
    if "\\" in url:
        raise ValueError("it contains a backslash")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError("it cannot be parsed") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("its scheme is not http or https")
    host, port = _parse_netloc(parts.netloc, scheme)
    path = parts.path or "/"
    if not path.startswith("/"):
        raise ValueError("it has no host")
    if _ENCODED_SEPARATOR.search(path):
        raise ValueError("its path contains an encoded '.', '/' or '\\'")
    # Tomcat reads "..;x" as "..": a segment's parameters do not hide a dot segment.
    if any(segment.split(";", 1)[0] in (".", "..") for segment in path.split("/")):
        raise ValueError("its path contains a '.' or '..' segment")
    query = f"?{parts.query}" if parts.query else ""
    return _Url(scheme, host, port, quote(path, safe=_PRINTABLE_ASCII), quote(query, safe=_PRINTABLE_ASCII))


def _parse_netloc(netloc: str, scheme: str) -> tuple[str, int]:
    if not netloc:
        raise ValueError("it has no host")
    if not netloc.isascii():
        raise ValueError("its host is not ASCII")
    if "@" in netloc:
        raise ValueError("it contains a user name or password")
    if netloc.startswith("["):
        end = netloc.find("]")
        literal, rest = netloc[1:end], netloc[end + 1 :]
        # A zone ("%eth0") names an interface of this machine: never a photo server's address.
        if end < 0 or "%" in literal or (rest and not rest.startswith(":")):
            raise ValueError("its host is not a valid IPv6 address")
        try:
            host = ipaddress.IPv6Address(literal).compressed
        except ValueError as exc:
            raise ValueError("its host is not a valid IPv6 address") from exc
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_or_empty = netloc.partition(":")
        host = host.lower()
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("its host is not a plain host name or address")
        port_text = port_text_or_empty if colon else None
    if not port_text:  # no port, or "host:" (an empty port means the default)
        return host, _DEFAULT_PORTS[scheme]
    # ASCII digits only, compared whole: "8080x", "+80", "²" and full-width digits are not ports.
    if not (len(port_text) <= 5 and all("0" <= char <= "9" for char in port_text)):
        raise ValueError("its port is not a number from 1 to 65535")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("its port is not a number from 1 to 65535")
    return host, port


def parse_allow_list(text: str) -> tuple[str, ...]:
    """RENLIAN_IMAGE_URL_ALLOW's comma-separated prefixes, each checked; ValueError names a bad one.

    Settings call this at start-up so that a mistyped prefix stops the server with a message
    instead of quietly refusing every URL.
    """
    prefixes = tuple(item.strip() for item in text.split(",") if item.strip())
    for prefix in prefixes:
        _parse_prefix(prefix)
    return prefixes


def _parse_prefix(prefix: str) -> _Url:
    try:
        parsed = _parse(prefix)
    except ValueError as exc:
        raise ValueError(f"{ALLOW_SETTING}: the prefix {prefix!r} is refused: {exc}") from None
    if parsed.query or "#" in prefix:
        raise ValueError(f"{ALLOW_SETTING}: the prefix {prefix!r} has a query or fragment")
    return parsed


class ImageFetcher:
    """Downloads image files from the allowed URL prefixes; one instance serves every request.

    `fetch` blocks for up to `timeout` seconds: call it from a thread that only downloads wait for
    (the server's download pool, api/pools.py), never on the event loop.
    """

    def __init__(self, allowed_prefixes: tuple[str, ...], timeout: float, max_bytes: int) -> None:
        if timeout <= 0 or max_bytes <= 0:
            raise ValueError("the timeout and the size cap must be positive")
        self._prefixes = tuple(_parse_prefix(prefix) for prefix in allowed_prefixes)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._tls: ssl.SSLContext | None = None
        self._tls_lock = threading.Lock()

    def check(self, url: str) -> None:
        """Refuse a URL that is not allowed, with 222204, without any network activity."""
        self._allowed(url)

    def fetch(self, url: str) -> bytes:
        """The file at `url`, or FaceApiError 222204 saying why not.

        The download runs in a thread of its own so that the deadline holds whatever stage it is
        in: a name look-up, a server that trickles its headers a byte at a time. At the deadline the
        caller stops waiting and the download's socket is shut down, which ends the thread too.
        """
        target = self._allowed(url)
        download = _Download(self, target, time.monotonic() + self.timeout)
        worker = threading.Thread(target=download.run, name="renlian-image-url", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            download.abandon()
            raise _refusal(self.timed_out())
        return download.outcome()

    def fetch_image(self, url: str, limits: ImageLimits) -> tuple[bytes, BGRImage]:
        """The file's bytes and its pixels, through the same image checks as a base64 image."""
        data = self.fetch(url)
        return data, decode_bytes(data, limits)

    def tls(self) -> ssl.SSLContext:
        """The system's trusted certificates, verified host names; loaded once, on first use, since
        loading them takes a tenth of a second and most servers never fetch over https."""
        with self._tls_lock:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return self._tls

    def timed_out(self) -> str:
        return f"the download timed out after {self.timeout:g} s"

    def _allowed(self, url: str, *, redirect: bool = False) -> _Url:
        if not self._prefixes:
            raise _refusal(f"no URL is fetched: {ALLOW_SETTING} is empty")
        what = "the redirect's target" if redirect else "the URL"
        try:
            parsed = _parse(url)
        except ValueError as exc:
            raise _refusal(f"{what} is refused: {exc}") from None
        if not any(parsed.under(prefix) for prefix in self._prefixes):
            raise _refusal(f"{what} is not under any prefix in {ALLOW_SETTING}")
        return parsed


class _Download:
    """One fetch, from the first request to the last byte, run by a worker thread."""

    def __init__(self, fetcher: ImageFetcher, url: _Url, deadline: float) -> None:
        self._fetcher = fetcher
        self._url = url
        self._deadline = deadline
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._abandoned = False
        self._data: bytes | None = None
        self._error: FaceApiError | None = None

    def run(self) -> None:
        try:
            self._data = self._follow()
        except FaceApiError as exc:
            self._error = exc
        except Exception as exc:
            self._error = _refusal(self._explain(exc))
        finally:
            self._close()

    def outcome(self) -> bytes:
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data

    def abandon(self) -> None:
        """Called by the waiting thread at the deadline: stop the download wherever it is."""
        with self._lock:
            self._abandoned = True
            connection = self._connection
        sock = connection.sock if connection is not None else None
        if sock is not None:
            # The plain socket's shutdown, also under TLS: it wakes a receive blocked in the worker
            # without touching the TLS object that thread is using.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _follow(self) -> bytes:
        url = self._url
        for redirects in range(MAX_REDIRECTS + 1):
            connection, response = self._request(url)
            status = response.status
            if status == 200:
                return self._read_body(connection, response)
            if status not in _REDIRECT_STATUSES:
                raise _refusal(f"the server answered HTTP status {status}")
            location = response.getheader("Location")
            if not location:
                raise _refusal(f"the server answered HTTP status {status} without a Location")
            if redirects == MAX_REDIRECTS:
                break
            url = self._fetcher._allowed(urljoin(url.text(), location), redirect=True)
            self._close()
        raise _refusal(f"the server redirected more than {MAX_REDIRECTS} times")

    def _request(self, url: _Url) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        timeout = self._remaining()
        connection = (
            http.client.HTTPSConnection(url.host, url.port, timeout=timeout, context=self._fetcher.tls())
            if url.scheme == "https"
            else http.client.HTTPConnection(url.host, url.port, timeout=timeout)
        )
        with self._lock:
            if self._abandoned:
                raise _refusal(self._fetcher.timed_out())
            self._connection = connection
        connection.request(
            "GET",
            url.path + url.query,
            headers={"User-Agent": "renlian", "Accept": "image/*", "Connection": "close"},
        )
        self._set_timeout(connection)
        return connection, connection.getresponse()

    def _read_body(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> bytes:
        cap = self._fetcher.max_bytes
        declared = response.length  # None when chunked or not given
        if declared is not None and declared > cap:
            raise _refusal(f"the image is larger than {cap} bytes (Content-Length {declared})")
        chunks: list[bytes] = []
        size = 0
        while True:
            self._set_timeout(connection)
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise _refusal(f"the image is larger than {cap} bytes")
            chunks.append(chunk)
        if declared is not None and size != declared:
            raise _refusal(f"the download broke off after {size} of {declared} bytes")
        if size == 0:
            raise _refusal("the server answered with an empty body")
        return b"".join(chunks)

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _refusal(self._fetcher.timed_out())
        return remaining

    def _set_timeout(self, connection: http.client.HTTPConnection) -> None:
        # Each blocking call waits at most until the deadline, so the worker ends on time even
        # when nobody is left to shut its socket down.
        if connection.sock is not None:
            connection.sock.settimeout(self._remaining())

    def _explain(self, exc: Exception) -> str:
        if self._abandoned or isinstance(exc, TimeoutError):
            return self._fetcher.timed_out()
        if isinstance(exc, ssl.SSLError):
            return f"the TLS connection failed ({exc.reason or type(exc).__name__})"
        if isinstance(exc, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(exc, http.client.IncompleteRead):
            return "the download broke off before its end"
        if isinstance(exc, http.client.HTTPException):
            return "the server's answer is not valid HTTP"
        if isinstance(exc, OSError):
            return f"the connection failed ({exc.strerror or type(exc).__name__})"
        return f"the download failed ({type(exc).__name__})"

    def _close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
