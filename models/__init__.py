"""Model files shipped with neuroplex (written by us, with their references)."""
