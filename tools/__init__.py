"""Developer tools kept with the project (not part of the installed package)."""
