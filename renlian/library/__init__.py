"""The face library: groups, users and faces, and exact search over them."""
