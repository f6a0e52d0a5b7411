/* sluice docs viewer: renders the project data embedded in #sluice-data.
 *
 * No dependencies and no network: everything comes from the embedded JSON.
 * Safety rule: project text is only ever inserted with textContent or as text
 * nodes; the single exception is the *_html fields, which the generator produced
 * from Markdown with raw HTML escaped.
 *
 * Routes (hash): #!/overview, #!/graph, #!/graph/<id>/<depth>, #!/<type>/<id>,
 * #!/column/<model id>/<column>, #!/search/<query>.
 */
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var CANVAS_THRESHOLD = 1000;
  var NODE_H = 30;
  var MIN_ZOOM = 0.002;
  var COLORS = {
    model: '#2563eb', source: '#16a34a', seed: '#b45309', snapshot: '#7c3aed',
    test: '#db2777', exposure: '#0891b2', semantic_model: '#0d9488', metric: '#ca8a04',
    saved_query: '#9333ea', other: '#64748b'
  };
  var SQL_KEYWORDS = new Set(('select from where join left right inner outer full cross on as and or not in is ' +
    'null case when then else end group by order having limit offset union all distinct with over partition ' +
    'window insert into values update delete create table view replace using qualify lateral between like ' +
    'ilike exists cast asc desc true false interval any except intersect natural recursive filter rows ' +
    'range preceding following current row unbounded nulls first last top merge matched set returning').split(' '));

  var DATA = JSON.parse(document.getElementById('sluice-data').textContent);
  var NODES = DATA.nodes;
  var LINEAGE = DATA.lineage && typeof DATA.lineage === 'object' ? DATA.lineage : {};
  var BY_ID = new Map();
  NODES.forEach(function (n, i) { BY_ID.set(n.id, i); });
  var GRAPH_INDEX = new Map();
  DATA.graph.nodes.forEach(function (g, k) { GRAPH_INDEX.set(g[0], k); });

  var content = document.getElementById('content');
  var searchInput = document.getElementById('search');
  var searchBox = document.getElementById('search-results');
  var cleanup = null;
  var searchIndex = null;
  var reverseLineage = null;

  /* ---------- DOM helpers ---------- */

  function h(tag, props, children) {
    var e = document.createElement(tag);
    setProps(e, props);
    append(e, children);
    return e;
  }

  function s(tag, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function setProps(e, props) {
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'trustedHtml') e.innerHTML = v; // generator-sanitized Markdown only
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    });
  }

  function append(e, children) {
    if (children === null || children === undefined || children === false) return;
    if (Array.isArray(children)) { children.forEach(function (c) { append(e, c); }); return; }
    e.appendChild(typeof children === 'object' ? children : document.createTextNode(String(children)));
  }

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function safeDecode(part) {
    try { return decodeURIComponent(part); } catch (err) { return part; }
  }

  /* ---------- links and labels ---------- */

  function label(i) {
    var n = NODES[i];
    return n.source && n.source.source_name ? n.source.source_name + '.' + n.name : n.name;
  }
  function nodeHref(i) { return '#!/' + NODES[i].rt + '/' + encodeURIComponent(NODES[i].id); }
  function graphHref(i, depth) { return '#!/graph/' + encodeURIComponent(NODES[i].id) + '/' + depth; }
  function columnHref(id, column) {
    return '#!/column/' + encodeURIComponent(id) + '/' + encodeURIComponent(column);
  }
  function nodeLink(i) { return h('a', { href: nodeHref(i), title: NODES[i].id }, label(i)); }
  function typeBadge(rt) { return h('span', { class: 'badge rt-' + rt }, rt); }
  function statusBadge(run) {
    var cls = 'status-' + String(run.status).toLowerCase().replace(/[^a-z0-9]+/g, '-');
    return h('span', { class: 'badge ' + cls, title: run.message || '' }, run.status);
  }
  function colorOf(rt) { return COLORS[rt] || COLORS.other; }

  /* ---------- router ---------- */

  function route() {
    if (cleanup) { cleanup(); cleanup = null; }
    closeSearch();
    content.className = '';
    content.textContent = '';
    var hash = location.hash || '';
    var parts = hash.slice(0, 3) === '#!/' ? hash.slice(3).split('/').map(safeDecode) : ['overview'];
    var page = parts[0];
    if (page === 'overview' || page === '') renderOverview();
    else if (page === 'graph') renderGraphPage(parts[1], parts[2]);
    else if (page === 'column') renderColumnPage(parts[1], parts.slice(2).join('/'));
    else if (page === 'search') renderSearchPage(parts.slice(1).join('/'));
    else renderNodePage(parts.slice(1).join('/'));
    markSidebar(hash);
    content.scrollTop = 0;
  }

  function notFound(what) {
    document.title = 'Not found · ' + DATA.project;
    append(content, [h('h1', null, 'Not found'), h('p', { class: 'muted' }, 'Nothing is documented as ' + what + '.')]);
  }

  /* ---------- sidebar ---------- */

  function renderSidebar() {
    var side = document.getElementById('sidebar');
    append(side, [
      h('a', { class: 'side-link', href: '#!/overview' }, 'Overview'),
      h('a', { class: 'side-link', href: '#!/graph' }, 'Lineage graph')
    ]);
    var groups = new Map();
    NODES.forEach(function (n, i) {
      if (!groups.has(n.rt)) groups.set(n.rt, []);
      groups.get(n.rt).push(i);
    });
    var order = ['model', 'source', 'seed', 'snapshot', 'semantic_model', 'metric', 'saved_query',
      'exposure', 'analysis', 'test'];
    var types = Array.from(groups.keys()).sort(function (a, b) {
      var ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    types.forEach(function (rt) { side.appendChild(sidebarGroup(rt, groups.get(rt))); });
  }

  function sidebarGroup(rt, members) {
    var plural = { analysis: 'analyses', saved_query: 'saved queries', semantic_model: 'semantic models' }[rt] || rt + 's';
    var details = h('details', { 'data-type': rt }, h('summary', null, plural + ' (' + members.length + ')'));
    var filled = false;
    function fill() {
      if (filled || !details.open) return;
      filled = true;
      var sorted = members.slice().sort(function (a, b) { return label(a).localeCompare(label(b)); });
      var frag = document.createDocumentFragment();
      sorted.forEach(function (i) {
        frag.appendChild(h('a', { class: 'side-link', href: nodeHref(i), title: NODES[i].id }, label(i)));
      });
      details.appendChild(frag);
    }
    details.addEventListener('toggle', fill);
    if (rt === 'model' && members.length <= 400) { details.open = true; fill(); }
    return details;
  }

  function markSidebar(hash) {
    var side = document.getElementById('sidebar');
    Array.prototype.forEach.call(side.querySelectorAll('a.current'), function (a) { a.classList.remove('current'); });
    Array.prototype.forEach.call(side.querySelectorAll('a.side-link'), function (a) {
      if (a.getAttribute('href') === hash) a.classList.add('current');
    });
  }

  /* ---------- overview ---------- */

  function renderOverview() {
    document.title = DATA.project + ' · sluice docs';
    content.appendChild(h('div', { class: 'desc overview', trustedHtml: DATA.overview_html }));
    var counts = new Map();
    var runs = new Map();
    NODES.forEach(function (n) {
      counts.set(n.rt, (counts.get(n.rt) || 0) + 1);
      if (n.run) runs.set(n.run.status, (runs.get(n.run.status) || 0) + 1);
    });
    var stats = h('div', { class: 'stats' });
    counts.forEach(function (count, rt) {
      stats.appendChild(h('div', { class: 'card' }, [h('div', { class: 'num' }, count), h('div', { class: 'muted' }, rt + 's')]));
    });
    append(content, [h('h2', null, 'Project'), stats]);
    if (runs.size) {
      var line = h('p');
      runs.forEach(function (count, status) { append(line, [statusBadge({ status: status }), count + '  ']); });
      append(content, [h('h2', null, 'Last run'), line]);
    }
    append(content, h('p', null, [h('a', { href: '#!/graph' }, 'Open the lineage graph'),
      ' (' + DATA.graph.nodes.length + ' nodes, ' + DATA.graph.edges.length + ' edges).']));
  }

  /* ---------- node pages ---------- */

  function renderNodePage(id) {
    var i = BY_ID.get(id);
    if (i === undefined) { notFound(id); return; }
    var n = NODES[i];
    document.title = label(i) + ' · ' + DATA.project;
    var heading = h('h1', { 'data-node-id': n.id }, [typeBadge(n.rt), ' ', label(i)]);
    var sub = h('div', { class: 'subtitle' }, [
      n.materialized ? h('span', { class: 'badge' }, n.materialized) : null,
      n.run ? statusBadge(n.run) : null,
      n.tags.map(function (t) { return h('span', { class: 'badge' }, '#' + t); })
    ]);
    append(content, [heading, sub]);
    append(content, [h('h2', null, 'Description'), descriptionBlock(n.description_html)]);
    append(content, [h('h2', null, 'Details'), detailsTable(n)]);
    if (n.source) renderSourceSections(n.source);
    if (n.test) renderTestSection(n);
    renderColumns(i);
    renderTests(n);
    renderRelations(i);
    renderCode(n);
    if (n.config && typeof n.config === 'object' && Object.keys(n.config).length) {
      append(content, [h('h2', null, 'Config'), h('pre', { class: 'json' }, JSON.stringify(n.config, null, 2))]);
    }
  }

  function descriptionBlock(html) {
    if (!html) return h('p', { class: 'muted' }, 'No description.');
    return h('div', { class: 'desc', trustedHtml: html });
  }

  function kvTable(rows) {
    var table = h('table', { class: 'kv' });
    rows.forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === '') return;
      table.appendChild(h('tr', null, [h('th', null, row[0]), h('td', null, row[1])]));
    });
    return table;
  }

  function detailsTable(n) {
    var run = n.run ? [statusBadge(n.run), ' ' + n.run.execution_time.toFixed(2) + ' s',
      n.run.completed_at ? ' · ' + n.run.completed_at : '', n.run.message ? ' · ' + n.run.message : ''] : null;
    return kvTable([
      ['Unique ID', h('code', null, n.id)],
      ['Relation', n.relation ? h('code', null, n.relation) : null],
      ['Materialization', n.materialized],
      ['Path', n.path ? h('code', null, n.path) : null],
      ['Properties', n.patch_path ? h('code', null, n.patch_path) : null],
      ['Package', n.package],
      ['Tags', n.tags.length ? n.tags.join(', ') : null],
      ['Last run', run]
    ]);
  }

  function jsonValue(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return h('code', null, JSON.stringify(v));
    return String(v);
  }

  function formatAfter(after) {
    if (!after || after.count === null || after.count === undefined) return null;
    return after.count + ' ' + after.period + (after.count === 1 ? '' : 's');
  }

  function renderSourceSections(src) {
    var fresh = src.freshness && typeof src.freshness === 'object' ? src.freshness : null;
    append(content, [h('h2', null, 'Source'), kvTable([
      ['Source', src.source_name],
      ['Loader', src.loader],
      ['Loaded at field', src.loaded_at_field ? h('code', null, src.loaded_at_field) : null],
      ['Warn after', fresh ? formatAfter(fresh.warn_after) : null],
      ['Error after', fresh ? formatAfter(fresh.error_after) : null],
      ['Freshness filter', fresh && fresh.filter ? h('code', null, fresh.filter) : null],
      ['Freshness', fresh ? null : 'not configured']
    ])]);
    if (src.source_description) {
      append(content, h('p', { class: 'muted' }, src.source_description));
    }
    var extract = src.extract && typeof src.extract === 'object' ? src.extract : null;
    append(content, h('h2', null, 'Extraction'));
    if (extract) {
      append(content, kvTable(Object.keys(extract).map(function (k) { return [k, jsonValue(extract[k])]; })));
    } else {
      append(content, h('p', { class: 'muted' }, 'No extraction configured: loaded outside sluice.'));
    }
    if (src.meta && typeof src.meta === 'object' && Object.keys(src.meta).length) {
      append(content, [h('h2', null, 'Meta'), kvTable(Object.keys(src.meta).map(function (k) { return [k, jsonValue(src.meta[k])]; }))]);
    }
  }

  function renderTestSection(n) {
    append(content, [h('h2', null, 'Test'), kvTable([
      ['Test', n.test.kind],
      ['Column', n.test.column ? h('code', null, n.test.column) : null],
      ['Tests', n.parents.length ? h('span', { class: 'links' }, n.parents.map(nodeLink)) : null]
    ])]);
  }

  function lineageEntry(id, column) {
    var model = LINEAGE[id];
    if (!model || typeof model !== 'object') return null;
    if (Object.prototype.hasOwnProperty.call(model, column)) return model[column];
    var lower = String(column).toLowerCase();
    var key = Object.keys(model).find(function (k) { return k.toLowerCase() === lower; });
    return key === undefined ? null : model[key];
  }

  function columnRows(i) {
    var n = NODES[i];
    var rows = n.columns.map(function (c) { return { col: c, fromLineage: false }; });
    var known = new Set(n.columns.map(function (c) { return c.name.toLowerCase(); }));
    var traced = LINEAGE[n.id] && typeof LINEAGE[n.id] === 'object' ? Object.keys(LINEAGE[n.id]) : [];
    traced.forEach(function (name) {
      if (!known.has(name.toLowerCase())) {
        rows.push({ col: { name: name, type: '', description: '', description_html: '', tests: [] }, fromLineage: true });
      }
    });
    return rows;
  }

  function renderColumns(i) {
    var n = NODES[i];
    var rows = columnRows(i);
    if (!rows.length) return;
    var table = h('table', { class: 'columns' }, h('tr', null, ['Column', 'Type', 'Description', 'Tests', 'Lineage'].map(function (t) {
      return h('th', null, t);
    })));
    rows.forEach(function (row) {
      var c = row.col;
      var entry = lineageEntry(n.id, c.name);
      var lineageCell = entry ? h('a', { href: columnHref(n.id, c.name), class: 'column-lineage' },
        entry.untraced ? 'untraced' : 'column lineage') : h('span', { class: 'muted' }, '—');
      table.appendChild(h('tr', { 'data-column': c.name }, [
        h('td', { class: 'col-name mono' }, c.name),
        h('td', { class: 'col-type mono' }, c.type || ''),
        h('td', { class: 'desc' }, c.description_html ? h('div', { trustedHtml: c.description_html })
          : (row.fromLineage ? h('span', { class: 'muted' }, 'not documented') : '')),
        h('td', null, c.tests.map(function (t) {
          return h('a', { class: 'badge test-badge', href: nodeHref(t), title: NODES[t].name }, NODES[t].test ? NODES[t].test.kind : NODES[t].name);
        })),
        h('td', null, lineageCell)
      ]));
    });
    append(content, [h('h2', null, 'Columns (' + rows.length + ')'), table]);
  }

  function renderTests(n) {
    if (!n.tests.length) return;
    var list = h('div', { class: 'links' });
    n.tests.forEach(function (t) {
      var test = NODES[t];
      append(list, h('span', null, [
        h('a', { href: nodeHref(t), title: test.id }, test.test ? test.test.kind : test.name),
        test.test && test.test.column ? h('span', { class: 'muted' }, ' on ' + test.test.column) : null,
        test.run ? [' ', statusBadge(test.run)] : null
      ]));
    });
    append(content, [h('h2', null, 'Tests (' + n.tests.length + ')'), list]);
  }

  function linkList(indices) {
    if (!indices.length) return h('p', { class: 'muted' }, 'None.');
    return h('div', { class: 'links' }, indices.map(function (j) { return h('span', null, [typeBadge(NODES[j].rt), nodeLink(j)]); }));
  }

  function renderRelations(i) {
    var n = NODES[i];
    var graphLink = GRAPH_INDEX.has(i) ? h('p', null, h('a', { href: graphHref(i, 2), class: 'focus-link' }, 'Show in lineage graph (+' + n.name + '+)')) : null;
    append(content, [
      h('h2', null, 'Depends on (' + n.parents.length + ')'), linkList(n.parents),
      h('h2', null, 'Referenced by (' + n.children.length + ')'), linkList(n.children),
      graphLink
    ]);
  }

  function renderCode(n) {
    var versions = [];
    if (n.compiled_code) versions.push(['Compiled', n.compiled_code]);
    if (n.raw_code) versions.push(['Source', n.raw_code]);
    if (!versions.length) return;
    var holder = h('div');
    var tabs = h('div', { class: 'tabs' });
    versions.forEach(function (v, k) {
      var button = h('button', { type: 'button', class: k === 0 ? 'on' : '' }, v[0]);
      button.addEventListener('click', function () {
        Array.prototype.forEach.call(tabs.children, function (b) { b.classList.remove('on'); });
        button.classList.add('on');
        holder.textContent = '';
        holder.appendChild(highlightSql(v[1]));
      });
      tabs.appendChild(button);
    });
    holder.appendChild(highlightSql(versions[0][1]));
    append(content, [h('h2', null, 'Code'), tabs, holder]);
  }

  /* Keyword highlighting built from text nodes: SQL text is never parsed as HTML. */
  function highlightSql(code) {
    var re = /(\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}|\{#[\s\S]*?#\})|(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*'?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;
    var out = h('code');
    var plain = '';
    var last = 0;
    var m;
    function flush() { if (plain) { out.appendChild(document.createTextNode(plain)); plain = ''; } }
    function span(cls, text) { flush(); out.appendChild(h('span', { class: cls }, text)); }
    while ((m = re.exec(code)) !== null) {
      plain += code.slice(last, m.index);
      if (m[1]) span('jinja', m[1]);
      else if (m[2]) span('com', m[2]);
      else if (m[3]) span('str', m[3]);
      else if (m[4]) span('num', m[4]);
      else if (SQL_KEYWORDS.has(m[5].toLowerCase())) span('kw', m[5]);
      else plain += m[5];
      last = re.lastIndex;
    }
    plain += code.slice(last);
    flush();
    return h('pre', { class: 'sql' }, out);
  }

  /* ---------- graph pages ---------- */

  function fullGraph() {
    var items = DATA.graph.nodes.map(function (g) {
      return { x: g[1], y: g[2], label: label(g[0]), rt: NODES[g[0]].rt, href: nodeHref(g[0]), node: g[0] };
    });
    return { items: items, edges: DATA.graph.edges };
  }

  function neighbourhood(center, depth) {
    var seen = new Map([[center, 0]]);
    [['parents', -1], ['children', 1]].forEach(function (dir) {
      var frontier = [center];
      for (var d = 1; d <= depth && frontier.length; d++) {
        var next = [];
        frontier.forEach(function (v) {
          NODES[v][dir[0]].forEach(function (w) {
            if (!seen.has(w) && GRAPH_INDEX.has(w)) { seen.set(w, d * dir[1]); next.push(w); }
          });
        });
        frontier = next;
      }
    });
    return seen;
  }

  /* A focused `+node+` view keeps the generator's ranks and in-rank order, compacted. */
  function focusedGraph(center, depth) {
    var members = Array.from(neighbourhood(center, depth).keys());
    var pos = new Map();
    members.forEach(function (v) { pos.set(v, DATA.graph.nodes[GRAPH_INDEX.get(v)]); });
    var ranks = Array.from(new Set(members.map(function (v) { return pos.get(v)[3]; }))).sort(function (a, b) { return a - b; });
    var layers = ranks.map(function () { return []; });
    members.forEach(function (v) { layers[ranks.indexOf(pos.get(v)[3])].push(v); });
    var items = [];
    var local = new Map();
    layers.forEach(function (layer, r) {
      layer.sort(function (a, b) { return pos.get(a)[2] - pos.get(b)[2]; });
      layer.forEach(function (v, k) {
        local.set(v, items.length);
        items.push({ x: r * 260, y: (k - (layer.length - 1) / 2) * 44, label: label(v), rt: NODES[v].rt, href: nodeHref(v), node: v });
      });
    });
    var edges = [];
    members.forEach(function (v) {
      NODES[v].parents.forEach(function (p) { if (local.has(p)) edges.push([local.get(p), local.get(v)]); });
    });
    return { items: items, edges: edges, focus: local.get(center) };
  }

  function graphCenter(id) {
    var i = id ? BY_ID.get(id) : undefined;
    if (i === undefined) return undefined;
    if (GRAPH_INDEX.has(i)) return i;
    return NODES[i].parents.find(function (p) { return GRAPH_INDEX.has(p); });
  }

  function renderGraphPage(id, depthText) {
    content.className = 'graph-mode';
    var center = graphCenter(id);
    var depth = clamp(parseInt(depthText, 10) || 2, 1, 50);
    var g = center === undefined ? fullGraph() : focusedGraph(center, depth);
    document.title = (center === undefined ? 'Lineage graph' : '+' + NODES[center].name + '+') + ' · ' + DATA.project;
    content.appendChild(graphToolbar(center, depth, g));
    var container = h('div', { id: 'graph' });
    content.appendChild(container);
    if (!g.items.length) { container.appendChild(h('div', { class: 'empty' }, 'No models to draw.')); return; }
    var view = drawGraph(container, g.items, g.edges, { nodeWidth: 200, focus: g.focus });
    cleanup = view.destroy;
  }

  function graphToolbar(center, depth, g) {
    var bar = h('div', { class: 'toolbar' });
    var find = h('input', { type: 'text', placeholder: 'Focus on a node…', id: 'graph-find', 'aria-label': 'Focus on a node' });
    find.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter') return;
      var hit = runSearch(find.value, 50).find(function (r) { return GRAPH_INDEX.has(r.i); });
      if (hit) location.hash = graphHref(hit.i, depth);
    });
    append(bar, [h('span', { class: 'title' }, center === undefined ? 'Lineage graph' : ['+', nodeLink(center), '+']), find]);
    if (center !== undefined) {
      var depthInput = h('input', { type: 'number', min: '1', max: '50', value: String(depth), id: 'graph-depth', 'aria-label': 'Depth' });
      depthInput.addEventListener('change', function () {
        location.hash = graphHref(center, clamp(parseInt(depthInput.value, 10) || 1, 1, 50));
      });
      append(bar, [h('label', null, ['depth ', depthInput]), h('a', { href: '#!/graph' }, 'Show all')]);
    }
    append(bar, h('span', { class: 'muted', id: 'graph-count' }, g.items.length + ' nodes · ' + g.edges.length + ' edges'));
    var legend = h('span', { class: 'legend' });
    ['model', 'source', 'seed', 'snapshot', 'exposure'].forEach(function (rt) {
      var swatch = h('i');
      swatch.style.background = colorOf(rt);
      append(legend, h('span', null, [swatch, rt]));
    });
    append(bar, legend);
    return bar;
  }

  /* ---------- column lineage ---------- */

  function columnKey(id, column) { return id + '\u0000' + String(column).toLowerCase(); }

  function buildReverseLineage() {
    reverseLineage = new Map();
    Object.keys(LINEAGE).forEach(function (model) {
      var columns = LINEAGE[model];
      if (!columns || typeof columns !== 'object') return;
      Object.keys(columns).forEach(function (column) {
        var up = columns[column] && columns[column].upstream;
        if (!Array.isArray(up)) return;
        up.forEach(function (u) {
          var key = columnKey(u.node, u.column);
          if (!reverseLineage.has(key)) reverseLineage.set(key, []);
          reverseLineage.get(key).push({ node: model, column: column });
        });
      });
    });
  }

  /* Walks upstream (lineage JSON) and downstream (its inverse) from one column. */
  function columnGraph(id, column) {
    if (!reverseLineage) buildReverseLineage();
    var cols = new Map();
    var edges = [];
    var edgeSeen = new Set();
    function add(node, col, dist) {
      var key = columnKey(node, col);
      if (!cols.has(key)) cols.set(key, { node: node, column: col, dist: dist, key: key });
      return key;
    }
    function link(from, to) {
      var k = from + '\u0001' + to;
      if (!edgeSeen.has(k)) { edgeSeen.add(k); edges.push([from, to]); }
    }
    var start = add(id, column, 0);
    var queue = [start];
    while (queue.length && cols.size < 3000) {
      var cur = cols.get(queue.shift());
      var entry = lineageEntry(cur.node, cur.column);
      if (entry && entry.untraced) cur.untraced = entry.untraced;
      ((entry && Array.isArray(entry.upstream)) ? entry.upstream : []).forEach(function (u) {
        var fresh = !cols.has(columnKey(u.node, u.column));
        var key = add(u.node, u.column, cur.dist - 1);
        link(key, cur.key);
        if (fresh) queue.push(key);
      });
    }
    queue = [start];
    while (queue.length && cols.size < 6000) {
      var down = cols.get(queue.shift());
      (reverseLineage.get(down.key) || []).forEach(function (d) {
        var fresh = !cols.has(columnKey(d.node, d.column));
        var key = add(d.node, d.column, down.dist + 1);
        link(down.key, key);
        if (fresh) queue.push(key);
      });
    }
    return { cols: cols, edges: edges, start: start };
  }

  function columnItems(graph) {
    var list = Array.from(graph.cols.values());
    var minDist = Math.min.apply(null, list.map(function (c) { return c.dist; }));
    var layers = new Map();
    list.forEach(function (c) {
      if (!layers.has(c.dist)) layers.set(c.dist, []);
      layers.get(c.dist).push(c);
    });
    var items = [];
    var local = new Map();
    layers.forEach(function (layer, dist) {
      layer.sort(function (a, b) { return (a.node + a.column).localeCompare(b.node + b.column); });
      layer.forEach(function (c, k) {
        var i = BY_ID.get(c.node);
        var name = i === undefined ? c.node.split('.').pop() : label(i);
        local.set(c.key, items.length);
        items.push({
          x: (dist - minDist) * 300, y: (k - (layer.length - 1) / 2) * 44,
          label: name + '.' + c.column, rt: i === undefined ? 'other' : NODES[i].rt,
          href: lineageEntry(c.node, c.column) ? columnHref(c.node, c.column) : (i === undefined ? null : nodeHref(i)),
          untraced: c.untraced, col: c
        });
      });
    });
    var edges = graph.edges.map(function (e) { return [local.get(e[0]), local.get(e[1])]; });
    return { items: items, edges: edges, focus: local.get(graph.start) };
  }

  function renderColumnPage(id, column) {
    var i = BY_ID.get(id);
    if (i === undefined) { notFound(id); return; }
    document.title = label(i) + '.' + column + ' · ' + DATA.project;
    var graph = columnGraph(id, column);
    var g = columnItems(graph);
    append(content, [
      h('h1', { 'data-column-lineage': column }, [typeBadge('column'), ' ', nodeLink(i), '.' + column]),
      h('p', { class: 'muted' }, 'Column-level lineage: where this column comes from and what is derived from it. Click a column to follow it.')
    ]);
    var doc = NODES[i].columns.find(function (c) { return c.name.toLowerCase() === column.toLowerCase(); });
    if (doc && doc.description_html) append(content, h('div', { class: 'desc', trustedHtml: doc.description_html }));
    var container = h('div', { id: 'graph', class: 'inline' });
    container.style.height = '440px';
    container.style.border = '1px solid #e3e6eb';
    container.style.borderRadius = '8px';
    content.appendChild(container);
    var view = drawGraph(container, g.items, g.edges, { nodeWidth: 250, focus: g.focus });
    cleanup = view.destroy;
    renderColumnTables(graph);
  }

  function renderColumnTables(graph) {
    var list = Array.from(graph.cols.values());
    [['Upstream columns', function (c) { return c.dist < 0; }], ['Downstream columns', function (c) { return c.dist > 0; }]].forEach(function (part) {
      var rows = list.filter(part[1]).sort(function (a, b) { return Math.abs(a.dist) - Math.abs(b.dist); });
      var table = h('table', { class: 'lineage-' + (part[0].indexOf('Up') === 0 ? 'upstream' : 'downstream') },
        h('tr', null, [h('th', null, 'Node'), h('th', null, 'Column'), h('th', null, 'Hops'), h('th', null, 'Note')]));
      rows.forEach(function (c) {
        var i = BY_ID.get(c.node);
        table.appendChild(h('tr', null, [
          h('td', null, i === undefined ? h('code', null, c.node) : nodeLink(i)),
          h('td', { class: 'mono' }, lineageEntry(c.node, c.column) ? h('a', { href: columnHref(c.node, c.column) }, c.column) : c.column),
          h('td', null, String(Math.abs(c.dist))),
          h('td', { class: 'untraced-note' }, c.untraced ? 'untraced: ' + c.untraced : '')
        ]));
      });
      append(content, [h('h2', null, part[0] + ' (' + rows.length + ')'), rows.length ? table : h('p', { class: 'muted' }, 'None known.')]);
    });
    var self = graph.cols.get(graph.start);
    if (self.untraced) append(content, h('p', { class: 'untraced-note' }, 'This column could not be traced: ' + self.untraced));
  }

  /* ---------- graph drawing (SVG below the threshold, canvas above) ---------- */

  function bounds(items, w) {
    var b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    items.forEach(function (it) {
      b.x0 = Math.min(b.x0, it.x - w / 2); b.x1 = Math.max(b.x1, it.x + w / 2);
      b.y0 = Math.min(b.y0, it.y - NODE_H / 2); b.y1 = Math.max(b.y1, it.y + NODE_H / 2);
    });
    return b;
  }

  function truncate(text, max) { return text.length > max ? text.slice(0, max - 1) + '…' : text; }

  function drawGraph(container, items, edges, opts) {
    var w = opts.nodeWidth;
    var useCanvas = items.length > CANVAS_THRESHOLD;
    container.dataset.nodeCount = String(items.length);
    container.dataset.edgeCount = String(edges.length);
    container.dataset.renderer = useCanvas ? 'canvas' : 'svg';
    var view = { k: 1, tx: 0, ty: 0 };
    var box = bounds(items, w);
    var renderer = (useCanvas ? canvasRenderer : svgRenderer)(container, items, edges, w, opts.focus, view);
    function fit() {
      var r = container.getBoundingClientRect();
      var bw = box.x1 - box.x0 + 40, bh = box.y1 - box.y0 + 40;
      view.k = clamp(Math.min(r.width / bw, r.height / bh, 1.2), MIN_ZOOM, 4);
      view.tx = (r.width - (box.x1 + box.x0) * view.k) / 2;
      view.ty = (r.height - (box.y1 + box.y0) * view.k) / 2;
      renderer.update();
    }
    var stopInput = attachPanZoom(container, view, renderer, items);
    function onResize() { renderer.resize(); }
    window.addEventListener('resize', onResize);
    container.appendChild(h('div', { class: 'graph-hint' }, 'scroll to zoom · drag to pan · click to open'));
    fit();
    return {
      destroy: function () { window.removeEventListener('resize', onResize); stopInput(); },
      fit: fit
    };
  }

  function attachPanZoom(container, view, renderer, items) {
    var drag = null;
    var dragged = false;
    function down(e) {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, tx: view.tx, ty: view.ty };
      dragged = false;
    }
    function move(e) {
      if (!drag) { renderer.hover(e); return; }
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!dragged && Math.abs(dx) + Math.abs(dy) < 4) return;
      if (!dragged) {
        dragged = true;
        container.classList.add('dragging');
        if (container.setPointerCapture) container.setPointerCapture(e.pointerId);
      }
      view.tx = drag.tx + dx;
      view.ty = drag.ty + dy;
      renderer.update();
    }
    function up() { drag = null; container.classList.remove('dragging'); }
    function click(e) {
      if (dragged) { dragged = false; return; }
      var k = renderer.hit(e);
      if (k >= 0 && items[k].href) location.hash = items[k].href;
    }
    function wheel(e) {
      e.preventDefault();
      var r = container.getBoundingClientRect();
      var px = e.clientX - r.left, py = e.clientY - r.top;
      var step = e.deltaMode === 1 ? e.deltaY * 20 : e.deltaY;
      var k = clamp(view.k * Math.exp(-step * 0.0015), MIN_ZOOM, 4);
      view.tx = px - (px - view.tx) * k / view.k;
      view.ty = py - (py - view.ty) * k / view.k;
      view.k = k;
      renderer.update();
    }
    container.addEventListener('pointerdown', down);
    container.addEventListener('pointermove', move);
    container.addEventListener('pointerup', up);
    container.addEventListener('pointercancel', up);
    container.addEventListener('click', click);
    container.addEventListener('wheel', wheel, { passive: false });
    return function () { drag = null; };
  }

  /* The current zoom and pan, as "k,tx,ty" (lets tests and tools map layout to screen). */
  function publishView(container, view) {
    container.dataset.view = view.k + ',' + view.tx + ',' + view.ty;
  }

  function edgePath(a, b, w) {
    var x1 = a.x + w / 2, x2 = b.x - w / 2, mx = (x1 + x2) / 2;
    return 'M' + x1 + ' ' + a.y + 'C' + mx + ' ' + a.y + ' ' + mx + ' ' + b.y + ' ' + x2 + ' ' + b.y;
  }

  function svgRenderer(container, items, edges, w, focus, view) {
    var svg = s('svg', { role: 'img', 'aria-label': 'lineage graph' });
    var root = s('g', { class: 'viewport' });
    var edgeLayer = s('g', { class: 'edges' });
    var nodeLayer = s('g', { class: 'nodes' });
    edges.forEach(function (e) {
      var hot = focus !== undefined && (e[0] === focus || e[1] === focus);
      edgeLayer.appendChild(s('path', { class: hot ? 'edge hot' : 'edge', d: edgePath(items[e[0]], items[e[1]], w) }));
    });
    items.forEach(function (it, k) {
      var g = s('g', {
        class: 'node rt-' + it.rt + (k === focus ? ' focus' : '') + (it.untraced ? ' untraced' : ''),
        transform: 'translate(' + (it.x - w / 2) + ',' + (it.y - NODE_H / 2) + ')',
        'data-index': String(k), 'data-label': it.label
      });
      var title = s('title');
      title.textContent = it.label + (it.untraced ? ' (untraced: ' + it.untraced + ')' : '');
      var text = s('text', { x: '12', y: '19.5' });
      text.textContent = truncate(it.label, Math.floor((w - 18) / 7.2));
      g.appendChild(title);
      g.appendChild(s('rect', { class: 'box', width: String(w), height: String(NODE_H), rx: '5' }));
      g.appendChild(s('rect', { class: 'bar', width: '5', height: String(NODE_H), rx: '2', fill: colorOf(it.rt) }));
      g.appendChild(text);
      nodeLayer.appendChild(g);
    });
    root.appendChild(edgeLayer);
    root.appendChild(nodeLayer);
    svg.appendChild(root);
    container.appendChild(svg);
    return {
      update: function () {
        root.setAttribute('transform', 'translate(' + view.tx + ',' + view.ty + ') scale(' + view.k + ')');
        publishView(container, view);
      },
      resize: function () {},
      hover: function () {},
      hit: function (e) {
        var node = e.target && e.target.closest ? e.target.closest('g.node') : null;
        return node ? parseInt(node.getAttribute('data-index'), 10) : -1;
      }
    };
  }

  function canvasRenderer(container, items, edges, w, focus, view) {
    var canvas = h('canvas');
    container.appendChild(canvas);
    var ctx = canvas.getContext('2d');
    var labels = items.map(function (it) { return truncate(it.label, Math.floor((w - 18) / 7.2)); });
    var byType = new Map();
    items.forEach(function (it, k) {
      if (!byType.has(it.rt)) byType.set(it.rt, []);
      byType.get(it.rt).push(k);
    });
    var scheduled = false;
    var size = { w: 0, h: 0, dpr: 1 };

    function resize() {
      var r = container.getBoundingClientRect();
      size.dpr = window.devicePixelRatio || 1;
      size.w = r.width; size.h = r.height;
      canvas.width = Math.max(1, Math.round(r.width * size.dpr));
      canvas.height = Math.max(1, Math.round(r.height * size.dpr));
      draw();
    }

    function visibleWorld() {
      return { x0: -view.tx / view.k, y0: -view.ty / view.k, x1: (size.w - view.tx) / view.k, y1: (size.h - view.ty) / view.k };
    }

    function drawEdges(v) {
      var straight = view.k < 0.1; // curves are invisible when zoomed far out
      ctx.beginPath();
      edges.forEach(function (e) {
        var a = items[e[0]], b = items[e[1]];
        var x1 = a.x + w / 2, x2 = b.x - w / 2;
        if (Math.max(x1, x2) < v.x0 || Math.min(x1, x2) > v.x1 || Math.max(a.y, b.y) < v.y0 || Math.min(a.y, b.y) > v.y1) return;
        var mx = (x1 + x2) / 2;
        ctx.moveTo(x1, a.y);
        if (straight) ctx.lineTo(x2, b.y);
        else ctx.bezierCurveTo(mx, a.y, mx, b.y, x2, b.y);
      });
      ctx.strokeStyle = '#a8b1bd';
      // One device pixel: the rasterizer's fast hairline path.
      ctx.lineWidth = 1 / (view.k * size.dpr);
      ctx.stroke();
    }

    function drawNodes(v) {
      var visible = function (it) { return it.x + w / 2 >= v.x0 && it.x - w / 2 <= v.x1 && it.y + NODE_H / 2 >= v.y0 && it.y - NODE_H / 2 <= v.y1; };
      ctx.beginPath();
      items.forEach(function (it) { if (visible(it)) ctx.rect(it.x - w / 2, it.y - NODE_H / 2, w, NODE_H); });
      ctx.fillStyle = '#ffffff';
      ctx.fill();
      ctx.strokeStyle = '#94a3b8';
      ctx.lineWidth = 1 / (view.k * size.dpr);
      ctx.stroke();
      byType.forEach(function (members, rt) {
        ctx.beginPath();
        members.forEach(function (k) { var it = items[k]; if (visible(it)) ctx.rect(it.x - w / 2, it.y - NODE_H / 2, 6, NODE_H); });
        ctx.fillStyle = colorOf(rt);
        ctx.fill();
      });
      if (focus !== undefined) {
        var f = items[focus];
        ctx.strokeStyle = '#2563eb';
        ctx.lineWidth = 2.5 / view.k;
        ctx.strokeRect(f.x - w / 2, f.y - NODE_H / 2, w, NODE_H);
      }
      if (view.k * 12.5 < 6) return;
      ctx.fillStyle = '#111827';
      ctx.font = '12.5px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      items.forEach(function (it, k) { if (visible(it)) ctx.fillText(labels[k], it.x - w / 2 + 12, it.y); });
    }

    function draw() {
      scheduled = false;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.setTransform(size.dpr * view.k, 0, 0, size.dpr * view.k, size.dpr * view.tx, size.dpr * view.ty);
      var v = visibleWorld();
      drawEdges(v);
      drawNodes(v);
      container.dataset.frames = String((parseInt(container.dataset.frames || '0', 10)) + 1);
      publishView(container, view);
    }

    function hit(e) {
      var r = container.getBoundingClientRect();
      var x = (e.clientX - r.left - view.tx) / view.k, y = (e.clientY - r.top - view.ty) / view.k;
      for (var k = items.length - 1; k >= 0; k--) {
        var it = items[k];
        if (Math.abs(x - it.x) <= w / 2 && Math.abs(y - it.y) <= NODE_H / 2) return k;
      }
      return -1;
    }

    resize();
    return {
      update: function () { if (!scheduled) { scheduled = true; requestAnimationFrame(draw); } },
      resize: resize,
      hover: function (e) {
        var k = hit(e);
        container.title = k >= 0 ? items[k].label : '';
        container.style.cursor = k >= 0 ? 'pointer' : '';
      },
      hit: hit
    };
  }

  /* ---------- search ---------- */

  function buildSearchIndex() {
    searchIndex = NODES.map(function (n, i) {
      return {
        name: label(i).toLowerCase(),
        id: n.id.toLowerCase(),
        description: (n.description || '').toLowerCase(),
        columns: n.columns.map(function (c) { return c.name.toLowerCase(); }),
        columnDocs: n.columns.map(function (c) { return (c.description || '').toLowerCase(); }),
        sql: (n.raw_code || '') + '\n' + (n.compiled_code || ''),
        sqlLower: null
      };
    });
  }

  function matchNode(i, q) {
    var e = searchIndex[i];
    var n = NODES[i];
    if (e.name === q) return { score: 100, where: 'name' };
    if (e.name.indexOf(q) === 0) return { score: 80, where: 'name' };
    if (e.name.indexOf(q) > 0 || e.id.indexOf(q) >= 0) return { score: 60, where: 'name' };
    var c = e.columns.indexOf(q);
    if (c < 0) c = e.columns.findIndex(function (name) { return name.indexOf(q) >= 0; });
    if (c >= 0) return { score: e.columns[c] === q ? 50 : 40, where: 'column', text: n.columns[c].name, at: n.columns[c].name.toLowerCase().indexOf(q) };
    var d = e.description.indexOf(q);
    if (d >= 0) return { score: 30, where: 'description', text: n.description, at: d };
    var cd = e.columnDocs.findIndex(function (doc) { return doc.indexOf(q) >= 0; });
    if (cd >= 0) return { score: 25, where: 'column ' + n.columns[cd].name, text: n.columns[cd].description, at: e.columnDocs[cd].indexOf(q) };
    if (e.sqlLower === null) e.sqlLower = e.sql.toLowerCase();
    var p = e.sqlLower.indexOf(q);
    if (p >= 0) return { score: 10, where: 'SQL', text: e.sql, at: p };
    return null;
  }

  function runSearch(query, limit) {
    var q = String(query || '').trim().toLowerCase();
    if (!q) return [];
    if (!searchIndex) buildSearchIndex();
    var results = [];
    for (var i = 0; i < NODES.length; i++) {
      var m = matchNode(i, q);
      if (!m) continue;
      m.i = i;
      m.q = q;
      if (NODES[i].rt === 'test') m.score -= 5;
      results.push(m);
    }
    results.sort(function (a, b) { return b.score - a.score || label(a.i).localeCompare(label(b.i)); });
    results.total = results.length;
    return limit ? results.slice(0, limit) : results;
  }

  function snippet(m) {
    if (m.text === undefined || m.at < 0) return null;
    var from = Math.max(0, m.at - 40);
    var to = Math.min(m.text.length, m.at + m.q.length + 60);
    return h('span', { class: 'snippet' }, [
      (from > 0 ? '…' : '') + m.text.slice(from, m.at).replace(/\s+/g, ' '),
      h('mark', null, m.text.slice(m.at, m.at + m.q.length)),
      m.text.slice(m.at + m.q.length, to).replace(/\s+/g, ' ') + (to < m.text.length ? '…' : '')
    ]);
  }

  function resultRow(m) {
    var where = m.where === 'column' ? 'column ' + m.text : m.where;
    return h('a', { class: 'result', href: nodeHref(m.i), 'data-id': NODES[m.i].id, 'data-where': where }, [
      typeBadge(NODES[m.i].rt), h('span', { class: 'name' }, label(m.i)),
      h('span', { class: 'where' }, 'matched ' + where), m.where === 'column' ? null : snippet(m)
    ]);
  }

  function showResults() {
    var q = searchInput.value;
    searchBox.textContent = '';
    if (!q.trim()) { searchBox.hidden = true; return; }
    var results = runSearch(q, 25);
    if (!results.length) searchBox.appendChild(h('div', { class: 'result muted' }, 'No matches for “' + q + '”.'));
    results.forEach(function (m) { searchBox.appendChild(resultRow(m)); });
    if (results.total > results.length) {
      searchBox.appendChild(h('a', { class: 'result', href: '#!/search/' + encodeURIComponent(q) }, 'Show all ' + results.total + ' results'));
    }
    searchBox.hidden = false;
  }

  function closeSearch() { searchBox.hidden = true; }

  function moveActive(delta) {
    var rows = Array.prototype.slice.call(searchBox.querySelectorAll('a.result'));
    if (!rows.length) return;
    var cur = rows.findIndex(function (r) { return r.classList.contains('active'); });
    rows.forEach(function (r) { r.classList.remove('active'); });
    var next = rows[clamp(cur + delta, 0, rows.length - 1)];
    next.classList.add('active');
    next.scrollIntoView({ block: 'nearest' });
  }

  function setupSearch() {
    var timer = null;
    searchInput.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(showResults, 60);
    });
    searchInput.addEventListener('focus', function () { if (searchInput.value.trim()) showResults(); });
    searchInput.addEventListener('keydown', function (e) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); moveActive(e.key === 'ArrowDown' ? 1 : -1); }
      else if (e.key === 'Escape') { closeSearch(); searchInput.blur(); }
      else if (e.key === 'Enter') {
        var active = searchBox.querySelector('a.result.active');
        location.hash = active ? active.getAttribute('href') : '#!/search/' + encodeURIComponent(searchInput.value);
      }
    });
    document.addEventListener('keydown', function (e) {
      var tag = e.target && e.target.tagName;
      if (e.key === '/' && tag !== 'INPUT' && tag !== 'TEXTAREA') { e.preventDefault(); searchInput.focus(); }
    });
    document.addEventListener('click', function (e) {
      if (e.target !== searchInput && !searchBox.contains(e.target)) closeSearch();
    });
  }

  function renderSearchPage(query) {
    document.title = 'Search · ' + DATA.project;
    var results = runSearch(query, 500);
    append(content, [h('h1', null, 'Search: ' + query),
      h('p', { class: 'muted' }, results.total + ' result' + (results.total === 1 ? '' : 's') + (results.total > results.length ? ', showing ' + results.length : ''))]);
    var list = h('div', { class: 'card search-page' });
    results.forEach(function (m) { list.appendChild(resultRow(m)); });
    append(content, list);
  }

  /* ---------- start ---------- */

  document.getElementById('project-name').textContent = DATA.project;
  renderSidebar();
  setupSearch();
  window.addEventListener('hashchange', route);
  route();
  window.sluiceDocs = { search: runSearch, nodeCount: NODES.length, graphNodeCount: DATA.graph.nodes.length };
  document.body.setAttribute('data-ready', '1');
}());
