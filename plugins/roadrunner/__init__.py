"""neuroplex package."""
