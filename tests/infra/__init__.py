"""Test infrastructure: throwaway PostgreSQL clusters (``pgcluster``), private PgBouncers
(``pgbouncer``) and pytest fixtures over both (``fixtures``).

Every server these start is a child of the test process *and* registered with a small reaper
process (``reaper``) that stops it if the test process dies without cleaning up, so no
postgres or pgbouncer process outlives a test run. Every process and directory they create
carries the tag ``hmstest`` (``leftover_processes()`` finds any).
"""
