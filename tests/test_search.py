"""Patient search finds exactly what its one-query definition finds, in the same order.

hms.search_patients reads indexes by several ways (MRN and name-order ranges, the gram indexes
of 0009_scale.sql, the latest-first covering index) so it stays fast at a million patients
without pg_trgm. Whatever way it takes, the answer must be the plain definition's: here the
two are compared on awkward names (Unicode, punctuation, LIKE's own wildcards, emoji), phones
and MRNs, for random texts and for pieces of the stored ones, at small limits so that every
group boundary and every way is reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The definition: what matches, and the order (an MRN equal to the text, then names that start
# with it, by name in character order and id, then the rest latest first; all latest first
# for an empty text).
NAIVE = r"""
    WITH q AS (SELECT btrim(coalesce(%(q)s, '')) AS t,
                      hms.like_escape(lower(btrim(coalesce(%(q)s, '')))) AS pat,
                      regexp_replace(coalesce(%(q)s, ''), '[^0-9]', '', 'g') AS digits),
         m AS (SELECT p.id, p.name, q.t, lower(p.mrn) = lower(q.t) AS exact,
                      lower(p.name) LIKE q.pat || '%%' AS prefix
                 FROM hms.patients p, q
                WHERE q.t = ''
                   OR lower(p.name) LIKE '%%' || q.pat || '%%'
                   OR lower(p.mrn) LIKE q.pat || '%%'
                   OR (length(q.digits) >= 3 AND q.digits = regexp_replace(q.t, '[ +-]', '', 'g')
                       AND regexp_replace(coalesce(p.phone, ''), '[^0-9]', '', 'g')
                           LIKE '%%' || q.digits || '%%'))
    SELECT id FROM m
     ORDER BY CASE WHEN t = '' THEN id END DESC, exact DESC, prefix DESC,
              CASE WHEN exact OR prefix THEN lower(name) COLLATE "C" END,
              CASE WHEN exact OR prefix THEN id END, id DESC
     LIMIT %(lim)s
"""

NAMES = [
    "Kumar, Anil", "Anil Kumar", "anil kumar", "ANIL  KUMAR", "Kumari Devi", "Sunita Kumar",
    "O'Brien, Seán", "D'Souza Maria", "Smith-Jones, Amy", "Zoë Ødegaard", "Åsa Björn",
    "Nguyễn Văn An", "Müller, Jürgen", "STRASSE ß", "Straße Groß", "Ιωάννης Παπαδόπουλος",
    "王小明", "李 王", "😀 Sam [x]", "100% Real", "under_score", "back\\slash", "a%b_c",
    "Patient 03", "Patient 30", "M000001 Mistaken", "mar", "Mar Mar Mar", "Omar Marwan",
    "Aa", "A", "Élodie É", "x" * 100, "Tab Name", "Dot. Dot.", "Ann-Marie, Le", "ann marie",
]
PHONES = ["+91 98765 43210", "98765-43210", "044 2345 6789", "+1 555 0100", "5550100", None,
          "123", "000 000 000", "+44 7700 900123", None]


@pytest.fixture(scope="module")
def registry(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
    """A database of awkward patients, shared by the module's examples (read only)."""
    server_dsn: str = request.getfixturevalue("server_dsn")
    template: str = request.getfixturevalue("template_db")
    from tests.conftest import with_dbname

    name = f"hms_search_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    with psycopg.connect(with_dbname(server_dsn, name), autocommit=True) as conn:
        for i in range(3):  # each name three times: ties on the name are ordered by id
            for k, patient in enumerate(NAMES):
                conn.execute("SELECT hms.add_patient(%s, %s, NULL, true)",
                             (patient, PHONES[(k + i) % len(PHONES)]))
        yield conn
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stored_pieces(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT name, mrn, coalesce(phone, '') FROM hms.patients").fetchall()
    return sorted({text for row in rows for text in row if text})


EQUIV = settings(max_examples=150, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
ALPHABET = "aAnNmMrRkKiIuU ,.-'%_\\0123456789+ßØøéÉäÄ王😀"


def searched(conn: psycopg.Connection[Any], text: str, limit: int) -> tuple[list[int], list[int]]:
    got = [r[0] for r in conn.execute("SELECT id FROM hms.search_patients(%s, %s)",
                                      (text, limit))]
    want = [r[0] for r in conn.execute(NAIVE, {"q": text, "lim": limit})]
    return got, want


@EQUIV
@given(data=st.data(), limit=st.sampled_from([1, 2, 3, 5, 8, 50, 500]))
def test_search_equals_its_definition(registry: psycopg.Connection[Any], data: st.DataObject,
                                      limit: int) -> None:
    pieces = stored_pieces(registry)
    piece = data.draw(st.sampled_from(pieces))
    start = data.draw(st.integers(0, max(len(piece) - 1, 0)))
    text = data.draw(st.one_of(
        st.just(piece[start:start + data.draw(st.integers(1, 6))]),   # a piece of a stored one
        st.just(piece[start:start + data.draw(st.integers(1, 6))].swapcase()),
        st.text(alphabet=ALPHABET, max_size=6),                        # anything
        st.just(f"  {piece[:4]}  "),                                   # spaces around
    ))
    got, want = searched(registry, text, limit)
    assert got == want, text


@pytest.mark.parametrize("text", ["", " ", "a", "A", "an", "kumar", "KUMAR", "%", "_", "\\",
                                  "a%b", "100%", "m000", "M000001", "98765", "987 65",
                                  "+91", "555-0100", "12", "ß", "SS", "王", "😀", "ø", "Ø",
                                  "ann-marie", "mar"])
def test_search_examples_equal_the_definition(registry: psycopg.Connection[Any], text: str
                                              ) -> None:
    for limit in (1, 4, 50):
        got, want = searched(registry, text, limit)
        assert got == want, (text, limit)


GROUP_C = r"""
    SELECT p.id FROM hms.patients p
     WHERE hms.search_match(lower(p.name), p.mrn, p.phone, %(pat)s, %(digits)s)
       AND NOT lower(p.name) LIKE %(pat)s || '%%' AND lower(p.mrn) <> %(lt)s
     ORDER BY p.id DESC LIMIT %(need)s
"""


@pytest.mark.parametrize("text", ["a", "an", "ar", "umar", "9876", "555", "m0", "王", "%", "o"])
def test_both_ways_to_the_other_matches_agree(registry: psycopg.Connection[Any], text: str
                                              ) -> None:
    """The third group read latest first (bounded or not) or from the gram indexes (capped or
    not) is the same list; a cap exceeded says so (NULL) instead of answering part."""
    lt = text.lower()
    digits = text if text.isdigit() and len(text) >= 3 else None
    pat = registry.execute("SELECT hms.like_escape(%s)", (lt,)).fetchone()
    assert pat is not None
    args = {"lt": lt, "pat": pat[0], "digits": digits}
    for need in (1, 3, 500):
        want = [r[0] for r in registry.execute(GROUP_C, {**args, "need": need})]
        recent = registry.execute(
            "SELECT hms.search_recent(%(lt)s, %(pat)s, %(digits)s, %(need)s, NULL)",
            {**args, "need": need}).fetchone()
        grams = registry.execute(
            "SELECT hms.search_by_grams(%(lt)s, %(pat)s, %(digits)s, %(need)s, NULL)",
            {**args, "need": need}).fetchone()
        assert recent is not None and grams is not None
        assert recent[0] == want and grams[0] == want, (text, need)
        bounded = registry.execute(  # reading only the latest 40 entries: a prefix of the list
            "SELECT hms.search_recent(%(lt)s, %(pat)s, %(digits)s, %(need)s, 40)",
            {**args, "need": need}).fetchone()
        assert bounded is not None and bounded[0] == want[:len(bounded[0])]
    capped = registry.execute(
        "SELECT hms.search_by_grams(%(lt)s, %(pat)s, %(digits)s, 5, 2)", args).fetchone()
    want = [r[0] for r in registry.execute(GROUP_C, {**args, "need": 10_000})]
    assert capped is not None
    if len(want) > 2:
        assert capped[0] is None, text
    else:  # within the cap: the answer (or NULL, when a patient found twice counted twice)
        assert capped[0] in (None, want[:5]), text


def test_search_needs_no_extension(registry: psycopg.Connection[Any]) -> None:
    """The embedded server has no pg_trgm: search must not depend on any extension."""
    rows = registry.execute(
        "SELECT DISTINCT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid"
        " WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_class'::regclass"
        "   AND d.objid IN (SELECT indexrelid FROM pg_index"
        "                    WHERE indrelid = 'hms.patients'::regclass)").fetchall()
    assert rows == []
