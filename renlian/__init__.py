"""renlian: a self-hosted face recognition service that speaks the Baidu AI Cloud Face API v2."""

__version__ = "0.1.0"
