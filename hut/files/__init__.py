"""Writing files safely: :mod:`~hut.files.atomic` (every file the suite writes, whole or not at all)
and :mod:`~hut.files.lock` (one process at a time per run folder). Nothing here knows what a run is."""
