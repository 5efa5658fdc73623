"""The plan of a search, as the server runs it inside ``hms.search_patients``: auto_explain's
nested plan where the server has it (PostgreSQL's contrib), else the function's SQL body
prepared with the same arguments and explained (the embedded server ships no contrib)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

AUTO_EXPLAIN = ("SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
                "SET auto_explain.log_buffers = on", "SET auto_explain.log_nested_statements = on",
                "SET auto_explain.log_level = notice", "SET client_min_messages = notice")
CALL = "SELECT * FROM hms.search_patients(%s, 50)"


def search_plan(dsn: str, text: str) -> dict[str, Any]:
    try:
        return {"method": "auto_explain", "plan": _auto_explain(dsn, text)}
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        return {"method": "function body, prepared", "plan": _body_plan(dsn, text),
                "auto_explain": reason}
    except (psycopg.Error, LookupError) as exc:
        why = f"{reason}; {exc}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(
            sql.SQL(CALL.replace("%s", "{}")).format(sql.Literal(text)))).fetchall()
    return {"method": "the call only (the inner plan needs auto_explain)",
            "plan": "\n".join(str(r[0]) for r in rows), "auto_explain": why}


def _auto_explain(dsn: str, text: str) -> str:
    notices: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for setting in AUTO_EXPLAIN:
            conn.execute(setting)
        conn.execute(CALL, (text,)).fetchall()
    return _slowest_first([n for n in notices if "plan:" in n])


def _slowest_first(plans: list[str]) -> str:
    """Each distinct statement once (its slowest run), slowest first, with how many times it
    ran: a helper called once per row shows as one plan and a count, not a hundred plans."""
    if not plans:
        raise psycopg.OperationalError("auto_explain sent no plan")
    by_text: dict[str, tuple[float, str, int]] = {}
    for plan in plans:
        found = re.search(r"duration: ([0-9.]+) ms", plan)
        ms = float(found.group(1)) if found else 0.0
        text = plan.partition("Query Text:")[2].split("\n\n")[0].strip()
        best, shown, runs = by_text.get(text, (-1.0, "", 0))
        by_text[text] = (ms, plan, runs + 1) if ms > best else (best, shown, runs + 1)
    ordered = sorted(by_text.values(), key=lambda x: -x[0])
    return "\n\n".join(f"-- ran {runs} time(s); slowest:\n{plan}" for _ms, plan, runs in ordered)


def _body_plan(dsn: str, text: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT p.prosrc, p.proargnames, l.lanname,"
            " array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t)"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " JOIN pg_language l ON l.oid = p.prolang"
            " WHERE n.nspname = 'hms' AND p.proname = 'search_patients'").fetchone()
        if row is None:
            raise LookupError("hms.search_patients not found")
        body, names, language, types = row
        if language != "sql":
            raise LookupError(f"hms.search_patients is {language}: its body cannot be explained")
        for i, name in enumerate(names or [], start=1):
            if i <= len(types):
                body = re.sub(rf"\b{re.escape(name)}\b", f"${i}", body)
        body = body.strip().rstrip(";")
        conn.execute("SET search_path = hms, pg_temp")
        conn.execute(f"PREPARE bench_search ({', '.join(types)}) AS {body}")
        args = [sql.Literal(a) for a in [text, 50][: len(types)]]
        lines = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_search ({})")
                             .format(sql.SQL(", ").join(args))).fetchall()
    return "\n".join(str(r[0]) for r in lines)
