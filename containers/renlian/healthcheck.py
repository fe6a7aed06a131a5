"""The image's HEALTHCHECK: exit 0 when this container's renlian answers GET /healthz with 200.

It asks 127.0.0.1 on RENLIAN_PORT, so it follows the port a compose file gives each node; a node bound
to one other address only (RENLIAN_HOST set to it) needs a health check of its own.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('RENLIAN_PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        # 503 (models still loading) arrives here as an HTTPError; the message lands in the health log.
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
