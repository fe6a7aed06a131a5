"""Liveness against screen replays: MiniFASNet conversion, synthetic replays, the replay bench."""
