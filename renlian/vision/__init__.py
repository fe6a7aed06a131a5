"""Images in, faces out: decoding, detection, landmarks, pose and embeddings. No HTTP, no storage."""
