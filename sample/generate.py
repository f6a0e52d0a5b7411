#!/usr/bin/env python3
"""generate.py - write the recorded X API v2 recent-search sample replayed by the example project.

Usage:
    python3 sample/generate.py [OUT_DIR]        # default: sample/x-recent-search next to this file

Writes a recording in the format `sluice extract --record DIR` produces (see docs/extraction.md):
  index.json   {"description": ..., "responses": [{"file", "status", "next_token", "since_id", "headers"}]}
  0001.json …  one response body per file, compact JSON exactly as the API sends it

What it holds: about 600 posts matching `#HouseOfTheDragon` over four hours of 2026-11-20
(14:00-18:00 UTC), newest first, in pages of up to 100 linked by `meta.next_token`:
original posts, retweets (`RT @…:`, referenced type `retweeted`), replies (`replied_to`,
`in_reply_to_user_id`) and quotes, in several languages; authors in `includes.users`
(repeated on every page they appear on); one page with partial `errors` (an author that
was deleted, so the post keeps an `author_id` missing from `includes.users`); one empty
page that still carries a `next_token` (the API does that: loop on `next_token`, not on
`data`). Ids are snowflakes consistent with `created_at`.

Deterministic: the same output every time (fixed seed, no clock). Standard library only.
"""
import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone

SEED = 20261120
START = datetime(2026, 11, 20, 14, 0, 0, tzinfo=timezone.utc)
HOURS = 4
POSTS = 612
PAGE_SIZE = 100
EMPTY_PAGE_AFTER = 3  # an empty page (with next_token) follows page 3
ERRORS_PAGE = 2  # page carrying partial errors
TWITTER_EPOCH_MS = 1288834974657

TAGS = ["HouseOfTheDragon", "HouseoftheDragon", "houseofthedragon", "HOTD"]
OTHER_TAGS = ["HotD", "GameOfThrones", "TeamBlack", "TeamGreen", "Targaryen", "Rhaenyra",
              "Aemond", "Daemon", "HBO", "Dracarys"]
LANGS = ["en"] * 14 + ["es"] * 3 + ["pt"] * 2 + ["fr", "de", "it", "ja", "ar", "tr", "und"]
PHRASES = {
    "en": ["that episode was unreal", "I am not ok after that ending", "the dragons looked incredible",
           "who else is team black", "the score in this scene", "cannot wait for next week",
           "this show never misses", "the dialogue in the council scene", "best cinematography on tv",
           "rewatching the finale again"],
    "es": ["qué capítulo tan increíble", "no puedo esperar a la próxima semana", "los dragones se ven geniales"],
    "pt": ["que episódio incrível", "não estou bem depois desse final"],
    "fr": ["quel épisode incroyable"], "de": ["was für eine Folge"], "it": ["che episodio pazzesco"],
    "ja": ["今週のエピソード最高だった"], "ar": ["حلقة رائعة"], "tr": ["inanılmaz bir bölüm"],
    "und": ["🐉🔥🔥", "👀👀"],
}
FIRST = ["aria", "ben", "caro", "dani", "eli", "fran", "gio", "hana", "ivo", "jess", "kai", "lena", "mo",
         "nora", "omar", "pia", "quin", "rosa", "sam", "tara", "uma", "vic", "wen", "xavi", "yara", "zoe"]


def snowflake(ts, rnd):
    ms = int(ts.timestamp() * 1000) + rnd.randint(0, 999)
    return ((ms - TWITTER_EPOCH_MS) << 22) | (rnd.randint(0, 1023) << 12) | rnd.randint(0, 4095)


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def make_users(rnd, n):
    users = []
    for i in range(n):
        name = rnd.choice(FIRST) + rnd.choice(["", "_", "."]) + rnd.choice(FIRST)
        username = (name.replace(".", "_") + str(rnd.randint(1, 999)))[:15]
        created = datetime(2008, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rnd.randint(0, 17 * 365 * 86400))
        followers = int(rnd.paretovariate(1.2) * 40)
        u = {
            "id": str(rnd.randint(10**8, 10**10) if rnd.random() < 0.5 else snowflake(created, rnd)),
            "name": name.title().replace("_", " "),
            "username": username,
            "created_at": iso(created),
            "description": rnd.choice(["", "dragons, books and tea", "fantasy nerd 🐉", "team black forever",
                                       "tv critic. opinions mine.", "Fire & Blood reread #3"]),
            "verified": rnd.random() < 0.04,
            "protected": False,
            "public_metrics": {
                "followers_count": followers,
                "following_count": rnd.randint(0, 2000),
                "tweet_count": rnd.randint(10, 60000),
                "listed_count": rnd.randint(0, max(1, followers // 50)),
                "like_count": rnd.randint(0, 90000),
            },
        }
        users.append(u)
    return users


def make_text(rnd, lang, tags, mention=None):
    text = rnd.choice(PHRASES[lang])
    words = [text]
    for t in tags:
        words.insert(rnd.randint(0, len(words)), "#" + t)
    if mention:
        words.insert(0, "@" + mention)
    if rnd.random() < 0.1:
        words.append("https://t.co/" + "".join(rnd.choice("abcdefghijkLMNOP0123456789") for _ in range(10)))
    return " ".join(words)


def entities_for(text):
    ents = {}
    hashtags, mentions, urls = [], [], []
    pos = 0
    for w in text.split(" "):
        start = pos
        end = pos + len(w)
        if w.startswith("#") and len(w) > 1:
            hashtags.append({"start": start, "end": end, "tag": w[1:]})
        elif w.startswith("@") and len(w) > 1:
            mentions.append({"start": start, "end": end, "username": w[1:].rstrip(":")})
        elif w.startswith("https://t.co/"):
            urls.append({"start": start, "end": end, "url": w, "expanded_url": "https://example.com/hotd",
                         "display_url": "example.com/hotd"})
        pos = end + 1
    if hashtags:
        ents["hashtags"] = hashtags
    if mentions:
        ents["mentions"] = mentions
    if urls:
        ents["urls"] = urls
    return ents


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "x-recent-search")
    rnd = random.Random(SEED)
    users = make_users(rnd, 190)
    deleted_author = "99999"
    span = HOURS * 3600
    # Activity peaks at 15:00 UTC (the episode airs): sample times from a skewed mix.
    times = sorted((START + timedelta(seconds=min(span - 1, max(0, int(rnd.triangular(0, span, 3600)))))
                    for _ in range(POSTS)), reverse=True)
    posts = []
    originals = []
    for i, ts in enumerate(reversed(times)):  # oldest first, so replies can point back
        author = users[int(rnd.paretovariate(1.1)) % len(users)] if rnd.random() < 0.6 else rnd.choice(users)
        lang = rnd.choice(LANGS)
        tags = [rnd.choice(TAGS)] + rnd.sample(OTHER_TAGS, rnd.choice([0, 0, 1, 1, 2, 3]))
        tid = str(snowflake(ts, rnd))
        r = rnd.random()
        tweet = {"id": tid, "edit_history_tweet_ids": [tid], "author_id": author["id"], "created_at": iso(ts),
                 "conversation_id": tid, "lang": lang, "possibly_sensitive": False, "reply_settings": "everyone"}
        if r < 0.22 and originals:
            orig = rnd.choice(originals)
            orig_author = next(u for u in users if u["id"] == orig["author_id"])
            text = ("RT @" + orig_author["username"] + ": " + orig["text"])[:140]
            tweet["text"] = text
            tweet["lang"] = orig["lang"]
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": orig["id"]}]
            metrics = {"retweet_count": orig["public_metrics"]["retweet_count"], "reply_count": 0,
                       "like_count": 0, "quote_count": 0, "bookmark_count": 0, "impression_count": 0}
        elif r < 0.38 and originals:
            orig = rnd.choice(originals)
            orig_author = next(u for u in users if u["id"] == orig["author_id"])
            text = make_text(rnd, lang, tags, mention=orig_author["username"])
            tweet["text"] = text
            tweet["conversation_id"] = orig["conversation_id"]
            tweet["in_reply_to_user_id"] = orig_author["id"]
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": orig["id"]}]
            metrics = None
        elif r < 0.44 and originals:
            orig = rnd.choice(originals)
            tweet["text"] = make_text(rnd, lang, tags) + " https://t.co/q" + orig["id"][-8:]
            tweet["referenced_tweets"] = [{"type": "quoted", "id": orig["id"]}]
            metrics = None
        else:
            tweet["text"] = make_text(rnd, lang, tags)
            metrics = None
        if metrics is None:
            likes = int(rnd.paretovariate(1.3)) - 1
            metrics = {"retweet_count": max(0, likes // 4 - rnd.randint(0, 2)), "reply_count": rnd.randint(0, 3),
                       "like_count": likes, "quote_count": rnd.randint(0, 1) if likes > 5 else 0,
                       "bookmark_count": rnd.randint(0, 2), "impression_count": likes * rnd.randint(20, 90) + rnd.randint(0, 50)}
        tweet["public_metrics"] = metrics
        ents = entities_for(tweet["text"])
        if ents:
            tweet["entities"] = ents
        if "referenced_tweets" not in tweet:
            originals.append(tweet)
        posts.append(tweet)
    posts.reverse()  # newest first, as the API pages
    pages = [posts[i:i + PAGE_SIZE] for i in range(0, len(posts), PAGE_SIZE)]
    # The deleted author: one post on the errors page loses its author.
    victim = pages[ERRORS_PAGE - 1][17]
    victim["author_id"] = deleted_author
    by_id = {u["id"]: u for u in users}

    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".json"):
            os.remove(os.path.join(out, f))
    responses = []
    tokens = ["b26v89c19zqg8o3fpzbn1e0ff" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20))
              for _ in range(len(pages) + 1)]
    bodies = []
    for n, page in enumerate(pages, start=1):
        authors = []
        for t in page:
            if t["author_id"] in by_id and by_id[t["author_id"]] not in authors:
                authors.append(by_id[t["author_id"]])
        body = {"data": page, "includes": {"users": authors}}
        if n == ERRORS_PAGE:
            body["errors"] = [{"value": deleted_author, "detail": "Could not find user with id: [%s]." % deleted_author,
                               "title": "Not Found Error", "resource_type": "user", "parameter": "author_id",
                               "resource_id": deleted_author,
                               "type": "https://api.twitter.com/2/problems/resource-not-found"}]
        body["meta"] = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        bodies.append(body)
        if n == EMPTY_PAGE_AFTER:
            bodies.append({"meta": {"result_count": 0}})
    for i, body in enumerate(bodies):
        if i + 1 < len(bodies):
            body["meta"]["next_token"] = tokens[i]
    reset = int(datetime(2026, 11, 20, 18, 5, tzinfo=timezone.utc).timestamp())
    for i, body in enumerate(bodies):
        name = "%04d.json" % (i + 1)
        with open(os.path.join(out, name), "w", encoding="utf-8") as fh:
            fh.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        responses.append({"file": name, "status": 200, "next_token": tokens[i - 1] if i > 0 else None,
                          "since_id": None,
                          "headers": {"content-type": "application/json; charset=utf-8",
                                      "x-rate-limit-limit": "450", "x-rate-limit-remaining": str(449 - i),
                                      "x-rate-limit-reset": str(reset)}})
    index = {"description": "X API v2 GET /2/tweets/search/recent?query=%23HouseOfTheDragon, 2026-11-20 14:00-18:00 UTC "
                            "(synthetic, written by sample/generate.py)",
             "responses": responses}
    with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(index, indent=2) + "\n")
    print("wrote %d responses, %d posts, %d users to %s" % (len(bodies), len(posts), len(users), out))


if __name__ == "__main__":
    main()
