"""Import formats: each turns shop export files into the generic staging relation.

A format module exposes ``stage(con, table, paths, relation)``; see ``base.stage_records``.
"""
