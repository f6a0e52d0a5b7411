#!/usr/bin/env python3
"""docs_timing.py - time sluice's docs site (target/index.html) in headless Chromium, as a person uses it.

Usage:  docs_timing.py SITE_DIR [--focus NODE_ID] [--runs 3] [--timeout-ms 120000]

Run with a Python that has Playwright (`pip install playwright`; it drives the system
/usr/bin/chromium, nothing is downloaded). Like /work/shared/bench/docs_site_timing.py it serves
SITE_DIR over HTTP on 127.0.0.1 and opens index.html in a fresh 1400x900 context per run, then
measures, in milliseconds:
  load_ms         navigation start -> the load event
  ready_ms        -> the viewer has finished its start-up (`body[data-ready="1"]`: sidebar,
                  search and router set up, overview rendered)
  interactive_ms  -> the first animation frame after that has run (the main thread is free and
                  the page painted; what "interactive" means here)
  graph_ms        open the full lineage graph (#!/graph) -> #graph has its nodes and a frame ran
  pan_frame_ms    dragging the graph 300 px in 20 mouse moves: the longest gap between two
                  animation frames during the drag (16.7 ms = 60 fps; >100 ms is visible lag)
  pan_step_ms     the drag's wall time per mouse move (input dispatch and handling, plus
                  Playwright's round trip); pan_moved says the view really moved, pan_redraws
                  counts the canvas redraws during the drag
  focus_ms        #!/graph/<node>/2 (the node, two levels up and down) -> drawn and a frame ran
plus the renderer (svg/canvas), the node counts and any page errors. --focus defaults to the
model in the middle of the sidebar's model list. Prints one JSON line per run, then `median {...}`.
"""
import argparse
import functools
import http.server
import json
import statistics
import threading
import time

from playwright.sync_api import sync_playwright

FRAME = "() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"
RECORD = """() => { window.__frames = []; const tick = t => { if (!window.__frames) return;
  window.__frames.push(t); requestAnimationFrame(tick); }; requestAnimationFrame(tick); }"""
STOP = "() => { const f = window.__frames; window.__frames = null; return f; }"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("site")
    ap.add_argument("--focus")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout-ms", type=int, default=120000)
    a = ap.parse_args()

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=a.site)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    tmo = a.timeout_ms

    rows = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True)
        for r in range(a.runs):
            ctx = b.new_context(viewport={"width": 1400, "height": 900})
            pg = ctx.new_page()
            errors = []
            pg.on("pageerror", lambda e: errors.append(str(e)[:200]))
            row = {"run": r + 1}

            t0 = time.perf_counter()
            pg.goto(url, wait_until="load", timeout=tmo)
            row["load_ms"] = round((time.perf_counter() - t0) * 1000)
            pg.wait_for_function("document.body.dataset.ready === '1'", timeout=tmo)
            row["ready_ms"] = round((time.perf_counter() - t0) * 1000)
            pg.evaluate(FRAME)
            row["interactive_ms"] = round((time.perf_counter() - t0) * 1000)
            row["nodes"] = pg.evaluate("window.sluiceDocs && window.sluiceDocs.nodeCount")

            t1 = time.perf_counter()
            pg.evaluate("location.hash = '#!/graph'")
            pg.wait_for_function("document.querySelector('#graph') && document.querySelector('#graph').dataset.nodeCount",
                                 timeout=tmo)
            pg.evaluate(FRAME)
            row["graph_ms"] = round((time.perf_counter() - t1) * 1000)
            row["graph_nodes"] = int(pg.evaluate("document.querySelector('#graph').dataset.nodeCount"))
            row["renderer"] = pg.evaluate("document.querySelector('#graph').dataset.renderer")

            box = pg.locator("#graph").bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            pg.mouse.move(x, y)
            view0 = pg.evaluate("document.querySelector('#graph').dataset.view")
            drawn0 = int(pg.evaluate("document.querySelector('#graph').dataset.frames || 0"))
            pg.evaluate(RECORD)
            pg.evaluate(FRAME)
            t2 = time.perf_counter()
            pg.mouse.down()
            steps = 20
            for i in range(1, steps + 1):
                pg.mouse.move(x + 15 * i, y + 5 * i)
            pg.mouse.up()
            pg.evaluate(FRAME)
            row["pan_step_ms"] = round((time.perf_counter() - t2) * 1000 / steps, 1)
            frames = pg.evaluate(STOP)
            gaps = [b2 - b1 for b1, b2 in zip(frames, frames[1:])]
            row["pan_frame_ms"] = round(max(gaps), 1) if gaps else None
            row["pan_moved"] = pg.evaluate("document.querySelector('#graph').dataset.view") != view0
            if row["renderer"] == "canvas":
                row["pan_redraws"] = int(pg.evaluate("document.querySelector('#graph').dataset.frames || 0")) - drawn0

            focus = a.focus or pg.evaluate("""() => { const d = document.querySelector('details[data-type="model"]');
                if (d && !d.open) { d.open = true; d.dispatchEvent(new Event('toggle')); }
                const l = [...document.querySelectorAll('a[href^="#!/model/"]')];
                return l.length ? decodeURIComponent(l[Math.floor(l.length / 2)].getAttribute('href').slice(9)) : null; }""")
            if focus:
                t3 = time.perf_counter()
                pg.evaluate("id => { location.hash = '#!/graph/' + encodeURIComponent(id) + '/2'; }", focus)
                pg.wait_for_function("document.querySelector('#graph-depth') && document.querySelector('#graph') "
                                     "&& document.querySelector('#graph').dataset.nodeCount", timeout=tmo)
                pg.evaluate(FRAME)
                row["focus_ms"] = round((time.perf_counter() - t3) * 1000)
                row["focus_nodes"] = int(pg.evaluate("document.querySelector('#graph').dataset.nodeCount"))
                row["focus"] = focus
            row["js_errors"] = errors
            rows.append(row)
            print(json.dumps(row), flush=True)
            ctx.close()
        b.close()
    srv.shutdown()
    keys = [k for k in rows[0] if k.endswith("_ms") and all(isinstance(r.get(k), (int, float)) for r in rows)]
    print("median", json.dumps({k: statistics.median(r[k] for r in rows) for k in keys}))


if __name__ == "__main__":
    main()
