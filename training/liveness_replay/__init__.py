"""Liveness against screen replays: MiniFASNet conversion, synthetic replays, the replay bench."""

# The minivision-ai/Silent-Face-Anti-Spoofing commit whose files are converted and measured against.
UPSTREAM_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
