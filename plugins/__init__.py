"""Built-in plugins (each declared through the `neuroplex` entry-point group)."""
