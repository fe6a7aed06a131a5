"""Training scripts for the small models renlian ships; not part of the installed package."""
