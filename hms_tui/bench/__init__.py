"""``hms-tui bench``: how fast the desk is at a hospital's scale, each figure beside a ceiling
measured in the same run and beside its goal (issue 14). Measured, never asserted.

One module per part, each a function from a scratch database to a dict of figures:
``checkin`` (a: throughput and its ceilings; b: the replaced system's numbering),
``live`` (c: commit-to-screen latency), ``history`` (d: cost as history grows),
``screens`` (e: one change applied to the display and to reception), ``importing`` (f: a bulk
import through the audited path). ``run`` puts them together; ``goals`` judges them.
"""
