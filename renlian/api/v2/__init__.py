"""The v2 protocol adapter: one router per endpoint family."""
