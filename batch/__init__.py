"""Batch work for the command line: ``runner`` (items, atomic folders, the manifest, and running here, in worker
processes or on Ray) and ``jobs`` (what one item of each job does, and the items a command line makes)."""
