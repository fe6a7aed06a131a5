"""The v3 protocol adapter: JSON (or form) bodies in, v3's envelope out, over the shared core."""
