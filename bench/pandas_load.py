#!/usr/bin/env python3
"""pandas_load.py - the original stack's staging step: landed X API pages -> pandas -> DataFrame.to_sql.

Usage:  pandas_load.py LAKE_DIR SCHEMA [--method multi|none] [--chunksize 10000]

Run with the benchmark venv's Python (pandas, SQLAlchemy 2, psycopg2). Connects with the
libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). What a typical
Airflow/pandas loader does with a run of landed pages, building the same three tables that
`sluice stage` builds (minus sluice's provenance columns):
  read     every LAKE_DIR/**/page-*.json, json.load, collect `data` and `includes.users`
  frame    pd.json_normalize of the tweets and of the users; public_metrics.* flattened to
           columns; ids to int64, created_at to timestamps (UTC, no zone); referenced_type =
           type of the first referenced tweet; tweet_hashtags = entities.hashtags exploded;
           users and (tweet, tag) pairs deduplicated, as sluice does within a run
  load     DataFrame.to_sql(SCHEMA.<table>, if_exists="replace", index=False, method=...,
           chunksize=...) for tweets, users, tweet_hashtags: pandas creates the tables and
           inserts through SQLAlchemy+psycopg2. With method=None (pandas' default, "none" here)
           SQLAlchemy 2 sends executemany batches as multi-row INSERT ... VALUES
           ("insertmanyvalues"); with "multi" pandas builds one multi-row INSERT per chunk.
Prints one JSON object: pages, rows per table, seconds per phase.
"""
import argparse
import glob
import json
import os
import time

import pandas as pd
import sqlalchemy as sa

TWEET_COLS = {"id": "id", "author_id": "author_id", "conversation_id": "conversation_id", "text": "text",
              "lang": "lang", "created_at": "created_at",
              "public_metrics.retweet_count": "retweet_count", "public_metrics.reply_count": "reply_count",
              "public_metrics.like_count": "like_count", "public_metrics.quote_count": "quote_count",
              "public_metrics.impression_count": "impression_count",
              "in_reply_to_user_id": "in_reply_to_user_id"}
USER_COLS = {"id": "id", "username": "username", "name": "name", "description": "description",
             "created_at": "created_at", "verified": "verified",
             "public_metrics.followers_count": "followers_count",
             "public_metrics.following_count": "following_count",
             "public_metrics.tweet_count": "tweet_count", "public_metrics.listed_count": "listed_count"}


def frame(records, cols, ids):
    df = pd.json_normalize(records)
    for c in cols:
        if c not in df:
            df[c] = None
    df = df[list(cols)].rename(columns=cols)
    for c in ids:
        df[c] = pd.to_numeric(df[c]).astype("Int64")
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True).dt.tz_localize(None)
    return df


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lake")
    ap.add_argument("schema")
    ap.add_argument("--method", default="none", choices=["none", "multi"])
    ap.add_argument("--chunksize", type=int, default=10000)
    a = ap.parse_args()

    t0 = time.perf_counter()
    tweets, users = [], []
    files = sorted(glob.glob(os.path.join(a.lake, "**", "page-*.json"), recursive=True))
    for path in files:
        with open(path, encoding="utf-8") as f:
            page = json.load(f)
        tweets.extend(page.get("data") or [])
        users.extend((page.get("includes") or {}).get("users") or [])
    t1 = time.perf_counter()

    tw = frame(tweets, TWEET_COLS, ["id", "author_id", "conversation_id", "in_reply_to_user_id"])
    tw["referenced_type"] = [r[0].get("type") if isinstance(r, list) and r else None
                             for r in (t.get("referenced_tweets") for t in tweets)]
    tw = tw.drop_duplicates("id")
    tags = [{"tweet_id": int(t["id"]), "tag": h["tag"]}
            for t in tweets for h in ((t.get("entities") or {}).get("hashtags") or [])]
    ht = pd.DataFrame(tags, columns=["tweet_id", "tag"]).drop_duplicates()
    us = frame(users, USER_COLS, ["id"]).drop_duplicates("id")
    t2 = time.perf_counter()

    url = sa.engine.URL.create(
        "postgresql+psycopg2", username=os.environ.get("PGUSER"), password=os.environ.get("PGPASSWORD") or None,
        host=os.environ.get("PGHOST"), port=int(os.environ.get("PGPORT", "5432")),
        database=os.environ.get("PGDATABASE"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema if not exists "{a.schema}"'))
    method = None if a.method == "none" else "multi"
    loads = {}
    for name, df in (("tweets", tw), ("users", us), ("tweet_hashtags", ht)):
        s = time.perf_counter()
        df.to_sql(name, engine, schema=a.schema, if_exists="replace", index=False, method=method,
                  chunksize=a.chunksize)
        loads[name] = round(time.perf_counter() - s, 3)
    t3 = time.perf_counter()
    rows = {"tweets": len(tw), "users": len(us), "tweet_hashtags": len(ht)}
    print(json.dumps({"pages": len(files), "rows": rows, "total_rows": sum(rows.values()),
                      "method": a.method, "chunksize": a.chunksize,
                      "read_s": round(t1 - t0, 3), "frame_s": round(t2 - t1, 3), "to_sql_s": round(t3 - t2, 3),
                      "to_sql_by_table_s": loads, "total_s": round(t3 - t0, 3)}))


if __name__ == "__main__":
    main()
