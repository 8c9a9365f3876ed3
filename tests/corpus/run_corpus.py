#!/usr/bin/env python3
"""Runs the public differential corpus (../shared/corpus) against a plain MariaDB and myshard,
using the corpus's own reference runner for parsing and normalisation, and prints the pass
rate by query class plus one JSON summary line (prefixed "SUMMARY ").

Usage: run_corpus.py CORPUS_DIR REF_HOST:PORT/DB TEST_HOST:PORT/DB USER PASSWORD
"""
import json
import os
import re
import sys
from collections import defaultdict

corpus = sys.argv[1]
sys.path.insert(0, corpus)
import run_diff  # noqa: E402  (the corpus's reference runner)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
from run import outer_order_by  # noqa: E402  (our suite's runner: the same ORDER BY rule)


class Args:
    user = sys.argv[4]
    password = sys.argv[5]


def verdict(sql, tags, ok_r, res_r, nc_r, ok_t, res_t, nc_t):
    unsup = "unsupported-ok" in tags.get("expect", [])
    cmp_ = tags.get("compare", [])
    ci = "collation-ci" in cmp_
    if not ok_r:
        return "ref_error"
    if not ok_t:
        return "refused_ok" if unsup else "refused_bad"
    if nc_r != nc_t:
        return "mismatch"
    if "rowcount" in cmp_:
        return "match" if len(res_r) == len(res_t) else "mismatch"
    r = [tuple(run_diff.norm(x, ci) for x in row) for row in res_r]
    t = [tuple(run_diff.norm(x, ci) for x in row) for row in res_t]
    ordered = outer_order_by(sql) and "partial" not in tags.get("order", [])
    return "match" if (r == t if ordered else sorted(r) == sorted(t)) else "mismatch"


def main():
    a = Args()
    ref = run_diff.connect(sys.argv[2], a)
    test = run_diff.connect(sys.argv[3], a)
    for cur, side in ((ref, "reference"), (test, "myshard")):
        for f in ("schema.sql", "data.sql"):
            for s in run_diff.statements(os.path.join(corpus, f)):
                try:
                    cur.execute(s)
                except Exception as e:  # noqa
                    print(f"LOAD FAILED on {side}: {s[:120]}: {e}")
                    print("SUMMARY " + json.dumps({"load_failed": True}))
                    return
    by_class = defaultdict(lambda: defaultdict(int))
    totals = defaultdict(int)
    problems = []
    for sql, tags in run_diff.parse_queries(os.path.join(corpus, "queries.sql")):
        ok_r, res_r, nc_r = run_diff.run(ref, sql)
        ok_t, res_t, nc_t = run_diff.run(test, sql)
        v = verdict(sql, tags, ok_r, res_r, nc_r, ok_t, res_t, nc_t)
        cls = (tags.get("class") or ["?"])[0]
        by_class[cls][v] += 1
        totals[v] += 1
        if v in ("mismatch", "ref_error"):
            problems.append(f"{v}: {sql[:300]}\n    myshard: {str(res_t)[:300]}\n    reference: {str(res_r)[:300]}")
        elif v.startswith("refused") and os.environ.get("MYSHARD_CORPUS_VERBOSE"):
            problems.append(f"{v}: {sql[:200]}\n    {str(res_t)[:200]}")
    print(f"{'class':<10} {'answered':>8} {'refused':>8} {'wrong':>6} {'total':>6}  pass rate")
    for cls in sorted(by_class):
        c = by_class[cls]
        total = sum(c.values())
        answered = c["match"]
        refused = c["refused_ok"] + c["refused_bad"]
        wrong = c["mismatch"]
        print(f"{cls:<10} {answered:>8} {refused:>8} {wrong:>6} {total:>6}  {100.0 * answered / total:5.1f}%")
    total = sum(totals.values())
    print(f"{'all':<10} {totals['match']:>8} {totals['refused_ok'] + totals['refused_bad']:>8} {totals['mismatch']:>6} {total:>6}  {100.0 * totals['match'] / max(total, 1):5.1f}%")
    for p in problems:
        print(p)
    print("SUMMARY " + json.dumps({"load_failed": False, **totals}))


main()
