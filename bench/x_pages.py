#!/usr/bin/env python3
"""x_pages.py - X API v2 recent-search pages from gen_tweets.py records: a replay recording, and a server.

Usage:
  x_pages.py pages TWEETS.ndjson OUTDIR [--per-page 100]
      OUTDIR gets sluice's recording layout (docs/extraction.md, "Replay and record"):
      OUTDIR/index.json {"responses": [{"file", "status", "next_token", "since_id", "headers"}]}
      and one body per page, OUTDIR/000001.json, ... Pages are in the API's order, newest
      tweets first, 100 a page, each {"data": [...], "includes": {"users": [...]},
      "meta": {"newest_id", "oldest_id", "result_count", "next_token"}} (no next_token on the
      last page), with the default fields sluice requests: tweets get edit_history_tweet_ids,
      conversation_id, possibly_sensitive, reply_settings, public_metrics (+ bookmark and
      impression counts), entities.hashtags/mentions parsed from the text, and about one in five
      is a reply or quote (referenced_tweets, in_reply_to_user_id); includes.users has each
      distinct author of the page once, with a profile derived from its id.
  x_pages.py serve OUTDIR [--port 0]
      Serves that recording as `GET /2/tweets/search/recent` on 127.0.0.1 (HTTP/1.1 keep-alive,
      threads): the page is chosen by the request's next_token, exactly as replay does; no
      rate-limit headers, so the client never waits. A request without `Authorization: Bearer`
      gets 401. Prints `port N` on stdout once listening.
Deterministic; standard library only.
"""
import argparse
import http.server
import json
import os
import random
import re
import sys
import urllib.parse

TAG = re.compile(r"#(\w+)")
MENTION = re.compile(r"@(\w+)")


def tweet_obj(rec):
    tid = rec["id"]
    rnd = random.Random(int(tid))
    text = rec["text"]
    pm = dict(rec["public_metrics"])
    pm["bookmark_count"] = rnd.randint(0, 3)
    pm["impression_count"] = pm["like_count"] * 40 + rnd.randint(0, 500)
    t = {"id": tid, "edit_history_tweet_ids": [tid], "author_id": rec["author_id"],
         "created_at": rec["created_at"], "conversation_id": tid, "lang": rec["lang"],
         "possibly_sensitive": False, "reply_settings": "everyone", "text": text,
         "public_metrics": pm}
    r = rnd.random()
    if r < 0.15:
        other = str(int(tid) - rnd.randint(1_000, 10_000_000))
        t["conversation_id"] = other
        t["in_reply_to_user_id"] = str(rnd.randint(10_000_000, 1_600_000_000_000_000_000))
        t["referenced_tweets"] = [{"type": "replied_to", "id": other}]
    elif r < 0.20:
        t["referenced_tweets"] = [{"type": "quoted", "id": str(int(tid) - rnd.randint(1_000, 10_000_000))}]
    ent = {}
    tags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in TAG.finditer(text)]
    if tags:
        ent["hashtags"] = tags
    mentions = [{"start": m.start(), "end": m.end(), "username": m.group(1)} for m in MENTION.finditer(text)]
    if mentions:
        ent["mentions"] = mentions
    if ent:
        t["entities"] = ent
    return t


def user_obj(uid):
    rnd = random.Random(int(uid) ^ 0x5EED)
    handle = f"user{int(uid) % 10_000_000}"
    return {"id": uid, "name": handle.title(), "username": handle,
            "created_at": f"20{rnd.randint(8, 24):02d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                          f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}.000Z",
            "description": rnd.choice(["", "data person", "fantasy nerd 🐉", "opinions are mine, \"quoted\"",
                                       "café ☕ and code"]),
            "verified": rnd.random() < 0.05, "protected": False,
            "public_metrics": {"followers_count": int(rnd.paretovariate(1.1) * 10),
                               "following_count": rnd.randint(0, 5000), "tweet_count": rnd.randint(1, 90000),
                               "listed_count": rnd.randint(0, 40), "like_count": rnd.randint(0, 20000)}}


def pages(args):
    with open(args.ndjson, encoding="utf-8") as f:
        lines = f.readlines()
    lines.reverse()  # gen_tweets.py writes oldest first; the API returns newest first
    os.makedirs(args.outdir, exist_ok=True)
    per = args.per_page
    n_pages = max(1, (len(lines) + per - 1) // per)
    responses, prev_token = [], None
    for p in range(n_pages):
        recs = [json.loads(line) for line in lines[p * per:(p + 1) * per]]
        data = [tweet_obj(r) for r in recs]
        authors = list(dict.fromkeys(t["author_id"] for t in data))
        token = f"b26v89c19zqg{p + 1:010d}" if p + 1 < n_pages else None
        meta = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if token:
            meta["next_token"] = token
        body = {"data": data, "includes": {"users": [user_obj(a) for a in authors]}, "meta": meta}
        name = f"{p + 1:06d}.json"
        with open(os.path.join(args.outdir, name), "w", encoding="utf-8") as out:
            json.dump(body, out, ensure_ascii=False, separators=(",", ":"))
        responses.append({"file": name, "status": 200, "next_token": prev_token, "since_id": None,
                          "headers": {"content-type": "application/json; charset=utf-8"}})
        prev_token = token
    with open(os.path.join(args.outdir, "index.json"), "w") as out:
        json.dump({"description": f"synthetic: {len(lines)} tweets from gen_tweets.py in {n_pages} pages "
                                  "(bench/x_pages.py)", "responses": responses}, out, indent=1)
    print(f"wrote {n_pages} pages, {len(lines)} tweets -> {args.outdir}", file=sys.stderr)


def serve(args):
    index = json.load(open(os.path.join(args.outdir, "index.json")))["responses"]
    by_token = {r["next_token"]: os.path.join(args.outdir, r["file"]) for r in index}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/2/tweets/search/recent":
                return self.reply(404, b'{"title":"Not Found Error"}')
            if not self.headers.get("authorization", "").startswith("Bearer "):
                return self.reply(401, b'{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}')
            q = urllib.parse.parse_qs(url.query)
            path = by_token.get((q.get("next_token") or [None])[0])
            if path is None:
                return self.reply(400, b'{"errors":[{"message":"Invalid next_token"}],"title":"Invalid Request"}')
            with open(path, "rb") as f:
                self.reply(200, f.read())

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"port {srv.server_address[1]}", flush=True)
    srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pages")
    p.add_argument("ndjson")
    p.add_argument("outdir")
    p.add_argument("--per-page", type=int, default=100)
    s = sub.add_parser("serve")
    s.add_argument("outdir")
    s.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    pages(a) if a.cmd == "pages" else serve(a)


if __name__ == "__main__":
    main()
