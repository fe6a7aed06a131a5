"""Persistence behind one small interface (`FaceStore`): SQLite now, PostgreSQL later."""
