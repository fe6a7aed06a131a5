"""The operations every protocol adapter shares."""
