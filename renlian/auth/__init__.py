"""Apps, OAuth tokens, bce-auth-v1 signatures and quotas: who may call, and how much."""
