"""The fuzzing suite: seeded mutations of valid files through the real loaders (see harness.py)."""
