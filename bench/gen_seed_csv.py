#!/usr/bin/env python3
"""gen_seed_csv.py - a deterministic ROWS-row CSV with mixed column types, for seed load benchmarks.

Usage:  gen_seed_csv.py ROWS OUT.csv [--seed 7]

Columns (what sluice's and dbt's type inference make of them on PostgreSQL):
  id          bigint     1..ROWS
  account_id  bigint     1..50,000
  amount      numeric    two decimals, 0.01..9,999.99 (some negative)
  score       numeric    six decimals in [0, 1)
  label       text       a word; about 2% contain a comma or double quotes (RFC 4180 quoted)
  created_at  timestamp  YYYY-MM-DD HH:MM:SS in 2024, some with milliseconds
  event_day   date       YYYY-MM-DD
  is_active   boolean    true/false
  note        text       ~40 characters of words, empty (NULL) in ~30% of rows, accents and emoji
About 120 bytes a row. Standard library only.
"""
import argparse
import csv
import datetime
import random

WORDS = ("alpha beta gamma delta order refund invoice shipping priority standard express "
         "north south east west café São Zürich 🚀 cloud batch stream").split()
LABELS = ["bronze", "silver", "gold", "platinum", "trial", "churned", "enterprise", "smb"]
ODD = ['a,b', 'say "hi"', 'x, "y"']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    t0 = datetime.datetime(2024, 1, 1)
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "account_id", "amount", "score", "label", "created_at", "event_day",
                    "is_active", "note"])
        for i in range(1, a.rows + 1):
            ts = t0 + datetime.timedelta(seconds=rnd.randrange(366 * 86400))
            created = ts.strftime("%Y-%m-%d %H:%M:%S")
            if rnd.random() < 0.2:
                created += f".{rnd.randrange(1000):03d}"
            amount = rnd.randrange(1, 1_000_000) * (-1 if rnd.random() < 0.03 else 1)
            label = rnd.choice(ODD) if rnd.random() < 0.02 else rnd.choice(LABELS)
            note = "" if rnd.random() < 0.3 else " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 8)))
            w.writerow([i, rnd.randint(1, 50_000), f"{amount / 100:.2f}", f"{rnd.random():.6f}", label,
                        created, (ts.date() - datetime.timedelta(days=rnd.randrange(3))).isoformat(),
                        "true" if rnd.random() < 0.7 else "false", note])


if __name__ == "__main__":
    main()
