// HoneyBee dashboard: plain JS, no dependencies, no build step.
//
// Safety rules of this file (attack data is hostile):
// - data only ever reaches the DOM as text (textContent, createTextNode,
//   setAttribute of non-URL, non-handler attributes); never innerHTML;
// - the only URLs set are this page's own hash routes (`#/source/…`,
//   `#/session/…`, `#/node/…`), built with encodeURIComponent: `link()`;
// - node ids are u64 and may exceed 2^53: JSON is parsed with every long
//   integer turned into a string first (parseJson), ids are kept as strings
//   and sent back as received, never computed with.
'use strict';

(function () {
  const TOKEN_KEY = 'honeybee.token';
  const MAX_FEED = 200;
  const NODES_EVERY_MS = 10000;
  const STATS_EVERY_MS = 15000;
  const SVG = 'http://www.w3.org/2000/svg';

  const state = {
    token: '',
    streamPort: null,
    nodes: new Map(), // id (string) -> node
    installForms: new Map(), // id -> element, kept across renders
    events: [],
    filters: { node: '', pot: '', type: '', src: '' },
    paused: false,
    ws: null,
    wsBackoff: 1000,
    wsTimer: null,
    timers: [],
    nodesTimer: null,
    renderTimer: null,
    running: false,
    pending: [], // handlers of outstanding stream commands, in order
    // The time range of every chart and table (GET /api/v1/stats `range=`
    // or `since=`/`until=`; `hours=` when the core does not know them).
    range: { pick: '24h', since: null, until: null },
    rangeFallback: false,
    world: null, // /ui/world.json, once loaded
    pageGen: 0, // bumped by each route: late answers of older pages are dropped
    nodePage: null, // { id, pots: Map pot_id -> { logs, metrics } } while a node page shows
    detailText: '', // what "Copy as JSON" copies
  };
  const RANGES = {
    '1h': { hours: 1, label: 'last hour' },
    '24h': { hours: 24, label: 'last 24 h' },
    '7d': { hours: 168, label: 'last 7 days' },
    '30d': { hours: 720, label: 'last 30 days' },
  };

  const $ = (id) => document.getElementById(id);

  // ---- JSON with exact u64 ------------------------------------------------

  // Quotes every integer literal of 16 or more digits outside strings, so
  // JSON.parse keeps it exact (as a string).
  function quoteBigInts(text) {
    let out = '';
    let i = 0;
    let last = 0;
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) { // "
        i++;
        while (i < n) {
          const d = text.charCodeAt(i);
          if (d === 92) { i += 2; continue; } // backslash escape
          i++;
          if (d === 34) break;
        }
        continue;
      }
      if (c === 45 || (c >= 48 && c <= 57)) { // - or digit
        let j = i;
        if (c === 45) j++;
        const digitsStart = j;
        while (j < n && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
        const digits = j - digitsStart;
        let k = j;
        while (k < n && /[.eE+\-0-9]/.test(text[k])) k++;
        if (k === j && digits >= 16) {
          out += text.slice(last, i) + '"' + text.slice(i, j) + '"';
          last = j;
        }
        i = k;
        continue;
      }
      i++;
    }
    return out + text.slice(last);
  }

  function parseJson(text) {
    return JSON.parse(quoteBigInts(text));
  }

  // A node id as a string, exactly as received.
  function idStr(v) {
    return v === undefined || v === null ? '' : String(v);
  }

  // ---- DOM helpers (text only) --------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (/^on/i.test(k) || k === 'href' || k === 'src') throw new Error('unsafe attribute ' + k);
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function text(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function button(label, cls, onClick, attrs) {
    const b = el('button', Object.assign({ type: 'button', class: cls }, attrs || {}), label);
    b.addEventListener('click', onClick);
    return b;
  }

  // A link to one of this page's routes: `#/<kind>/<value>`, the value
  // percent-encoded, so no data can make it anything but a fragment.
  function link(kind, value, children, attrs) {
    const a = el('a', Object.assign({ class: 'link' }, attrs || {}), children === undefined ? text(value) : children);
    a.href = '#/' + kind + '/' + encodeURIComponent(text(value));
    // A link inside a clickable row does not also open the row.
    a.addEventListener('click', (e) => e.stopPropagation());
    return a;
  }

  // An address links to its source page; anything else is plain text.
  function ipLink(ip, suffix) {
    const v = text(ip);
    if (!/^[0-9A-Fa-f:.]{2,45}$/.test(v)) return el('span', null, v + (suffix || ''));
    return el('span', null, link('source', v, v, { 'data-ip': v }), suffix || '');
  }

  function nodeLink(id, name) {
    return link('node', id, text(name || id), { 'data-node-link': id });
  }

  function sessionLink(session, srcIp) {
    const a = link('session', session, text(session), { class: 'link mono', 'data-session-link': text(session) });
    if (srcIp && /^[0-9A-Fa-f:.]{2,45}$/.test(text(srcIp))) a.href += '?src_ip=' + encodeURIComponent(text(srcIp));
    return a;
  }

  function notice(message, isError) {
    const n = $('notice');
    n.textContent = message || '';
    n.className = 'notice' + (isError ? ' error' : '');
    n.hidden = !message;
  }

  function toast(message, isError) {
    let box = $('toast');
    if (!box) {
      box = el('div', { id: 'toast', role: 'status' });
      document.body.appendChild(box);
    }
    const t = el('div', { class: 'toast' + (isError ? ' error' : '') }, message);
    box.appendChild(t);
    setTimeout(() => t.remove(), isError ? 8000 : 4000);
    while (box.childNodes.length > 5) box.removeChild(box.firstChild);
  }

  function ago(iso) {
    const t = Date.parse(iso || '');
    if (Number.isNaN(t)) return 'never';
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function shortTime(ts) {
    const s = text(ts);
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(s);
    return m ? m[1] + ' ' + m[2] : s;
  }

  // ---- REST ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + state.token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const raw = await r.text();
    let data = null;
    try {
      data = raw ? parseJson(raw) : null;
    } catch (_) {
      data = null;
    }
    if (!r.ok) {
      const why = data && typeof data.error === 'string' ? data.error : 'HTTP ' + r.status;
      if (r.status === 401) unauthorized();
      throw new ApiError(r.status, why);
    }
    return data;
  }

  // GET of `path` as the text the core sent (exact, for "Copy as JSON").
  async function apiText(path) {
    const r = await fetch(path, { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' });
    const raw = await r.text();
    if (!r.ok) {
      if (r.status === 401) unauthorized();
      let why = 'HTTP ' + r.status;
      try {
        const d = parseJson(raw);
        if (d && typeof d.error === 'string') why = d.error;
      } catch (_) {
        // keep the status
      }
      throw new ApiError(r.status, why);
    }
    return raw;
  }

  function unauthorized() {
    notice('The API token was refused. Enter a valid token.', true);
    stop();
    $('app').hidden = true;
  }

  function nodePath(id, rest) {
    return '/api/v1/nodes/' + encodeURIComponent(id) + (rest || '');
  }

  // ---- fleet ----------------------------------------------------------------

  async function refreshNodes() {
    const data = await api('GET', '/api/v1/nodes');
    const next = new Map();
    for (const n of (data && data.nodes) || []) {
      n.node_id = idStr(n.node_id);
      next.set(n.node_id, n);
    }
    state.nodes = next;
    renderNodes();
    renderNodeFilter();
  }

  // Several cores share one database: each shows every core's health.
  async function refreshCores() {
    const data = await api('GET', '/api/v1/cores');
    const box = $('cores');
    clear(box);
    const cores = (data && data.cores) || [];
    $('cores-count').textContent = cores.filter((c) => c.alive).length + ' of ' + cores.length + ' alive';
    for (const c of cores) {
      const look = !c.alive ? 'Stopped' : c.health === 'ok' ? 'Running' : 'Error';
      box.appendChild(el('li', { class: 'core', 'data-core': text(c.core_name) },
        el('span', { class: 'mono' }, text(c.core_name)),
        el('span', { class: 'badge', 'data-state': look }, c.alive ? text(c.health) : 'gone'),
        c.leader ? el('span', { class: 'dim' }, 'leader') : null,
        el('span', { class: 'dim' }, c.nodes + (c.nodes === 1 ? ' node' : ' nodes'))));
    }
  }

  // What alert modules reported (POST /api/v1/alerts/report). Titles and
  // errors come from attack data: text only, like everything else here.
  async function refreshAlerts() {
    const data = await api('GET', '/api/v1/alerts');
    const channels = (data && data.channels) || [];
    const recent = (data && data.recent) || [];
    const num = (v) => el('td', { class: 'num mono' }, text(v));
    const cbox = $('alert-channels');
    clear(cbox);
    for (const c of channels) {
      const p50 = c.latency_ms_p50 === null || c.latency_ms_p50 === undefined ? '–' : text(c.latency_ms_p50) + ' ms';
      const p99 = c.latency_ms_p99 === null || c.latency_ms_p99 === undefined ? '–' : text(c.latency_ms_p99) + ' ms';
      cbox.appendChild(el('tr', { 'data-module': text(c.module), 'data-channel': text(c.name) },
        el('td', { title: 'reported ' + text(c.reported_at) },
          el('div', { class: 'mono' }, text(c.name)),
          el('div', { class: 'dim' }, text(c.type) + ' · ' + text(c.module))),
        num(c.sent), num(c.failed), num(c.retries), num(c.dropped), num(c.queued),
        el('td', { class: 'mono latency' }, p50 + ' / ' + p99),
        el('td', { class: 'error', title: text(c.last_error) }, text(c.last_error))));
    }
    if (!channels.length) {
      cbox.appendChild(el('tr', null, el('td', { colspan: 8, class: 'dim' }, 'No alert module has reported.')));
    }
    const rbox = $('alert-recent');
    clear(rbox);
    for (const r of recent) {
      rbox.appendChild(el('tr', { 'data-alert-id': text(r.id), 'data-outcome': text(r.outcome) },
        el('td', { class: 'mono' }, shortTime(r.time)),
        el('td', null, el('span', { class: 'badge', 'data-state': text(r.severity) }, text(r.severity))),
        el('td', { class: 'mono' }, text(r.rule)),
        el('td', { class: 'mono' }, text(r.channel)),
        el('td', { title: text(r.error) }, el('span', { class: 'badge', 'data-state': text(r.outcome) }, text(r.outcome))),
        el('td', { class: 'title', title: text(r.error) }, text(r.title))));
    }
    if (!recent.length) {
      rbox.appendChild(el('tr', null, el('td', { colspan: 6, class: 'dim' }, 'No alerts yet.')));
    }
    $('alerts-count').textContent = channels.length + (channels.length === 1 ? ' channel' : ' channels') +
      ', ' + recent.length + ' recent';
  }

  function scheduleNodeRefresh() {
    if (state.nodesTimer || !state.running) return;
    state.nodesTimer = setTimeout(() => {
      state.nodesTimer = null;
      refreshNodes().catch(() => {});
    }, 1000);
  }

  // Re-renders the fleet at most every 250 ms (heartbeats of big fleets).
  function renderNodesSoon() {
    if (state.renderTimer) return;
    state.renderTimer = setTimeout(() => {
      state.renderTimer = null;
      renderNodes();
    }, 250);
  }

  function sortedNodes() {
    return [...state.nodes.values()].sort((a, b) =>
      (a.approved === b.approved ? 0 : a.approved ? 1 : -1) ||
      text(a.node_name).localeCompare(text(b.node_name)) ||
      a.node_id.localeCompare(b.node_id));
  }

  function renderNodes() {
    const body = $('nodes');
    clear(body);
    const nodes = sortedNodes();
    $('fleet-count').textContent = nodes.length + (nodes.length === 1 ? ' node' : ' nodes');
    if (nodes.length === 0) {
      body.appendChild(el('tr', null, el('td', { colspan: 6, class: 'dim' }, 'No nodes yet.')));
    }
    for (const n of nodes) body.appendChild(nodeRow(n));
    const live = new Set(nodes.map((n) => n.node_id));
    for (const id of state.installForms.keys()) if (!live.has(id)) state.installForms.delete(id);
  }

  function nodeRow(n) {
    const id = n.node_id;
    const status = n.approved === false
      ? el('span', { class: 'badge', 'data-state': 'Pending' }, 'pending approval')
      : el('span', { class: 'badge', 'data-state': text(n.status) }, text(n.status));
    const conn = el('div', { class: 'dim' }, n.connected
      ? 'connected' + (n.core_name ? ' to ' + text(n.core_name) : '')
      : 'disconnected');

    const pots = el('ul', { class: 'pots' });
    for (const p of n.pots || []) {
      const potId = text(p.pot_id);
      pots.appendChild(el('li', { class: 'pot', 'data-pot-id': potId },
        el('span', { class: 'mono' }, potId),
        el('span', { class: 'dim' }, text(p.pot_type)),
        el('span', { class: 'badge', 'data-state': text(p.status), title: text(p.message) }, text(p.status)),
        n.approved !== false && p.pot_type !== 'extension' && [
          button('Start', 'small good', () => command(id, { DeployPot: potId }), { 'data-action': 'start' }),
          button('Stop', 'small', () => command(id, { StopPot: potId }), { 'data-action': 'stop' }),
          button('Uninstall', 'small danger', () => {
            if (window.confirm('Uninstall pot ' + potId + ' from ' + text(n.node_name) + '?')) {
              command(id, { UninstallPot: potId });
            }
          }, { 'data-action': 'uninstall' }),
        ]));
    }
    if (!(n.pots || []).length) pots.appendChild(el('li', { class: 'dim' }, 'no pots'));

    const actions = el('div', { class: 'actions' });
    if (n.approved === false) {
      // The approval binds to the address shown here: if the node now asks
      // from elsewhere the core refuses (409) and the list is refreshed.
      const from = n.peer_address ? text(n.peer_address) : null;
      if (from) actions.appendChild(el('span', { class: 'dim mono' }, 'from ' + from + ' '));
      actions.appendChild(button('Approve', 'good', () => approve(id, n.node_name, from), { 'data-action': 'approve' }));
    } else if (n.node_type === 'Full') {
      // Only a Full node runs pots; an Extension node (type Agent) has none.
      actions.appendChild(installForm(id));
    }

    return el('tr', { 'data-node-id': id },
      el('td', null,
        el('div', { class: 'node-name' }, nodeLink(id, n.node_name)),
        el('div', { class: 'node-id mono' }, 'id ' + id),
        el('div', { class: 'dim' }, text(n.node_type) + (n.agent_version ? ' · ' + text(n.agent_version) : ''))),
      el('td', null, status, conn),
      el('td', { title: text(n.last_seen), 'data-last-seen': text(n.last_seen) }, ago(n.last_seen)),
      el('td', { class: 'mono' }, text(n.peer_address || (n.address + ':' + n.port))),
      el('td', null, pots),
      el('td', null, actions));
  }

  function installForm(id) {
    let f = state.installForms.get(id);
    if (f) return f;
    const potId = el('input', { placeholder: 'pot id', value: 'cowrie-01', 'aria-label': 'pot id' });
    const kind = el('input', { placeholder: 'type', value: 'cowrie', 'aria-label': 'honeypot type' });
    const auto = el('input', { type: 'checkbox', checked: true, 'aria-label': 'start after install' });
    f = el('form', { class: 'install', autocomplete: 'off' },
      potId, kind, el('label', { class: 'dim' }, auto, ' start'),
      el('button', { type: 'submit', class: 'small', 'data-action': 'install' }, 'Install'));
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      const pid = potId.value.trim();
      const t = kind.value.trim();
      if (!pid || !t) {
        toast('A pot needs an id and a type.', true);
        return;
      }
      command(id, { InstallPot: { pot_id: pid, honeypot_type: t, auto_start: auto.checked } });
    });
    state.installForms.set(id, f);
    return f;
  }

  async function approve(id, name, from) {
    try {
      await api('POST', nodePath(id, '/approve'), from ? { peer_address: from } : undefined);
      toast('Approved ' + text(name) + ' (' + id + ')');
      await refreshNodes();
    } catch (e) {
      toast('Approving ' + id + ' failed: ' + e.message, true);
      await refreshNodes();
    }
  }

  async function command(id, cmd) {
    const name = Object.keys(cmd)[0];
    try {
      await api('POST', nodePath(id, '/commands'), cmd);
      toast(name + ' sent to node ' + id);
    } catch (e) {
      toast(name + ' for node ' + id + ' failed: ' + e.message, true);
    }
  }

  function renderNodeFilter() {
    const sel = $('f-node');
    const keep = sel.value;
    clear(sel);
    sel.appendChild(el('option', { value: '' }, 'all'));
    for (const n of sortedNodes()) {
      sel.appendChild(el('option', { value: n.node_id }, text(n.node_name) + ' (' + n.node_id + ')'));
    }
    sel.value = keep;
    if (sel.value !== keep) sel.value = '';
  }

  function nodeName(id) {
    const n = state.nodes.get(id);
    return n ? text(n.node_name) : id;
  }

  // ---- events -------------------------------------------------------------

  function normalizeEvent(e) {
    return {
      id: e.id === undefined || e.id === null ? null : idStr(e.id),
      raw: e,
      node_id: idStr(e.node_id),
      pot_id: text(e.pot_id),
      pot_type: text(e.pot_type),
      event_type: text(e.event_type),
      timestamp: text(e.timestamp),
      data: e.data && typeof e.data === 'object' ? e.data : {},
    };
  }

  function matches(e) {
    const f = state.filters;
    if (f.node && e.node_id !== f.node) return false;
    if (f.pot && e.pot_id !== f.pot) return false;
    if (f.type && !e.event_type.startsWith(f.type)) return false;
    if (f.src && !text(e.data.src_ip).startsWith(f.src)) return false;
    return true;
  }

  async function loadEvents() {
    const f = state.filters;
    const q = new URLSearchParams();
    q.set('limit', f.type || f.src ? '1000' : '100');
    if (f.node) q.set('node_id', f.node);
    if (f.pot) q.set('pot_id', f.pot);
    const w = rangeWindow();
    q.set('since', w.since.toISOString().replace(/\.\d+Z$/, 'Z'));
    if (w.until) q.set('until', w.until.toISOString().replace(/\.\d+Z$/, 'Z'));
    const data = await api('GET', '/api/v1/events?' + q.toString());
    state.events = ((data && data.events) || []).map(normalizeEvent).filter(matches).slice(0, MAX_FEED);
    renderEvents();
  }

  // One event as a table row; clicking it shows every field.
  function eventRow(e, fresh) {
    const d = e.data;
    const port = d.src_port !== undefined && d.src_port !== null ? ':' + text(d.src_port) : '';
    const src = d.src_ip === undefined || d.src_ip === null ? '' : ipLink(d.src_ip, port);
    const secret = [d.password, d.input, d.url, d.message].find((v) => v !== undefined && v !== null);
    const cell = (v, cls) => el('td', { class: cls, title: text(v) }, text(v));
    const row = el('tr', { class: 'event' + (fresh ? ' new' : ''), 'data-event-type': e.event_type, 'data-event-id': e.id, tabindex: 0 },
      cell(shortTime(e.timestamp), 'mono'),
      el('td', { title: nodeName(e.node_id) }, nodeLink(e.node_id, nodeName(e.node_id))),
      cell(e.pot_id, 'mono'),
      cell(e.event_type, 'mono'),
      el('td', { class: 'mono src', title: text(d.src_ip) + port }, src),
      el('td', { class: 'mono user', title: text(d.username) }, text(d.username)),
      cell(secret, 'mono'));
    row.addEventListener('click', () => openDetail(e));
    row.addEventListener('keydown', (k) => {
      if (k.key === 'Enter') openDetail(e);
    });
    return row;
  }

  function renderEvents() {
    const body = $('events');
    clear(body);
    for (const e of state.events) body.appendChild(eventRow(e, false));
    if (!state.events.length) {
      body.appendChild(el('tr', { class: 'empty' }, el('td', { colspan: 7, class: 'dim' }, 'No events yet.')));
    }
    $('feed-count').textContent = state.events.length + ' shown';
  }

  function liveEvent(raw, cursor) {
    const e = normalizeEvent(raw);
    if (e.id === null && cursor !== undefined && cursor !== null && /^\d+$/.test(String(cursor))) e.id = String(cursor);
    const n = state.nodes.get(e.node_id);
    if (n) n.last_seen = new Date().toISOString();
    if (state.paused || !matches(e) || !rangeIsLive()) return;
    state.events.unshift(e);
    const body = $('events');
    const empty = body.querySelector('tr.empty');
    if (empty) empty.remove();
    body.insertBefore(eventRow(e, true), body.firstChild);
    while (state.events.length > MAX_FEED) {
      state.events.pop();
      if (body.lastChild) body.removeChild(body.lastChild);
    }
    $('feed-count').textContent = state.events.length + ' shown';
  }

  function readFilters() {
    state.filters = {
      node: $('f-node').value,
      pot: $('f-pot').value.trim(),
      type: $('f-type').value.trim(),
      src: $('f-src').value.trim(),
    };
  }

  // ---- stats and charts ---------------------------------------------------

  // ---- time range ------------------------------------------------------------

  // The chosen range as dates: `until` null means "up to now".
  function rangeWindow() {
    const r = state.range;
    if (r.pick === 'custom' && r.since) return { since: r.since, until: r.until };
    const h = (RANGES[r.pick] || RANGES['24h']).hours;
    return { since: new Date(Date.now() - h * 3600000), until: null };
  }

  function rangeIsLive() {
    const w = rangeWindow();
    return !w.until || w.until.getTime() >= Date.now();
  }

  function rangeLabel() {
    const r = state.range;
    if (r.pick !== 'custom' || !r.since) return (RANGES[r.pick] || RANGES['24h']).label;
    return shortTime(r.since.toISOString()) + ' – ' + (r.until ? shortTime(r.until.toISOString()) : 'now');
  }

  const iso = (d) => d.toISOString().replace(/\.\d+Z$/, 'Z');

  // The stats query for the range: `range=`/`since=`/`until=`, or `hours=`
  // (counted back from now) for a core that answers 400 to those.
  function statsQuery(fallback) {
    const r = state.range;
    const q = new URLSearchParams();
    if (!fallback) {
      if (r.pick === 'custom' && r.since) {
        q.set('since', iso(r.since));
        if (r.until) q.set('until', iso(r.until));
      } else {
        q.set('range', r.pick);
      }
      return q.toString();
    }
    const w = rangeWindow();
    const hours = Math.ceil((Date.now() - w.since.getTime()) / 3600000);
    q.set('hours', String(Math.min(720, Math.max(1, hours))));
    return q.toString();
  }

  async function fetchStats() {
    if (!state.rangeFallback) {
      try {
        return await api('GET', '/api/v1/stats?' + statsQuery(false));
      } catch (e) {
        // A core without ranges names the parameter it does not know; any
        // other 400 (a custom range it refuses) is the user's to see.
        if (!(e instanceof ApiError) || e.status !== 400 || !/unknown parameter/.test(e.message)) throw e;
        state.rangeFallback = true;
      }
    }
    return api('GET', '/api/v1/stats?' + statsQuery(true));
  }

  function readRange() {
    const pick = $('range-pick').value;
    const from = $('range-from').value;
    const to = $('range-to').value;
    if (pick === 'custom') {
      // datetime-local is the browser's local time.
      const since = from ? new Date(from) : null;
      const until = to ? new Date(to) : null;
      if (!since || Number.isNaN(since.getTime())) {
        toast('A custom range needs a start.', true);
        return false;
      }
      if (until && (Number.isNaN(until.getTime()) || until <= since)) {
        toast('The end of the range must come after its start.', true);
        return false;
      }
      state.range = { pick, since, until };
    } else {
      state.range = { pick, since: null, until: null };
    }
    return true;
  }

  function showRangeInputs() {
    const custom = $('range-pick').value === 'custom';
    for (const l of document.querySelectorAll('#range label.custom')) l.hidden = !custom;
  }

  function applyRange() {
    if (!readRange()) return;
    refreshStats().catch((e) => toast('Loading statistics failed: ' + e.message, true));
    loadEvents().catch((e) => toast('Loading events failed: ' + e.message, true));
  }

  // ---- stats and charts ---------------------------------------------------

  async function refreshStats() {
    const s = await fetchStats();
    if (!s) return;
    $('range-note').textContent = state.rangeFallback
      ? 'this core counts whole hours back from now (hours=)'
      : '';
    renderTotals(s.totals || {});
    const series = Array.isArray(s.series)
      ? s.series.map((r) => ({ start: r.start, count: r.count }))
      : (s.events_per_minute || []).map((r) => ({ start: r.minute, count: r.count }));
    seriesChart($('chart-minutes'), series, Array.isArray(s.series));
    drawMap(s.top_countries).catch(() => {});
    barChart($('chart-sources'), s.top_source_ips || [], (v) => ipLink(v));
    barChart($('chart-usernames'), s.top_usernames || []);
    barChart($('chart-passwords'), s.top_passwords || []);
    barChart($('chart-credentials'), s.top_credentials || []);
    barChart($('chart-commands'), s.top_commands || []);
  }

  function renderTotals(t) {
    const box = $('totals');
    clear(box);
    const item = (n, l) => el('div', { class: 'total' }, el('div', { class: 'n' }, text(n)), el('div', { class: 'l' }, l));
    box.appendChild(item(t.events ?? 0, 'events stored'));
    box.appendChild(item(t.events_in_window ?? 0, 'events, ' + rangeLabel()));
    box.appendChild(item(t.nodes ?? 0, 'nodes'));
    box.appendChild(item(t.pots ?? 0, 'pots'));
  }

  // Events per bucket: minutes, hours or days, as the series' spacing says.
  function seriesChart(box, rows, ranged) {
    clear(box);
    const W = 900, H = 150, L = 36, B = 20, T = 8;
    const step = rows.length > 1 ? Date.parse(rows[1].start) - Date.parse(rows[0].start) : 60000;
    const unit = step >= 86400000 ? 'day' : step >= 3600000 ? 'hour' : 'minute';
    $('series-label').textContent = 'per ' + unit + ', ' + (ranged ? rangeLabel() : 'last hour');
    const max = Math.max(1, ...rows.map((r) => Number(r.count) || 0));
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'events per ' + unit });
    root.appendChild(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B }));
    root.appendChild(svg('text', { x: L - 4, y: T + 8, 'text-anchor': 'end' }, String(max)));
    root.appendChild(svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, '0'));
    const slot = (W - L) / Math.max(1, rows.length);
    const tick = (iso) => {
      const m = /^\d{4}-(\d\d)-(\d\d)T(\d\d:\d\d)/.exec(text(iso));
      if (!m) return '';
      return unit === 'minute' ? m[3] : unit === 'hour' ? m[1] + '-' + m[2] + ' ' + m[3] : m[1] + '-' + m[2];
    };
    const every = Math.max(1, Math.ceil(rows.length / 8));
    rows.forEach((r, i) => {
      const c = Number(r.count) || 0;
      const h = ((H - B - T) * c) / max;
      root.appendChild(svg('rect', {
        class: 'bar', x: (L + i * slot + 1).toFixed(1), y: (H - B - h).toFixed(1),
        width: Math.max(1, slot - 2).toFixed(1), height: h.toFixed(1), 'data-count': c,
      }, svg('title', null, shortTime(r.start) + ': ' + c)));
      const last = i === rows.length - 1;
      if ((i % every === 0 && i < rows.length - every / 2) || last) {
        const x = last ? W : L + i * slot + slot / 2;
        root.appendChild(svg('text', { x: x.toFixed(1), y: H - 5, 'text-anchor': last ? 'end' : 'middle' }, tick(r.start)));
      }
    });
    if (!rows.length) root.appendChild(svg('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data yet'));
    box.appendChild(root);
  }

  // `labelOf(value)`, when given, makes each label an element (a link).
  function barChart(box, rows, labelOf) {
    clear(box);
    const top = rows.slice(0, 8);
    const W = 360, row = 22, LW = 130, H = Math.max(row * top.length, row * 2) + 4;
    const max = Math.max(1, ...top.map((r) => Number(r.count) || 0));
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    top.forEach((r, i) => {
      const y = 2 + i * row;
      const label = text(r.value);
      const short = label.length > 18 ? label.slice(0, 17) + '…' : label;
      const c = Number(r.count) || 0;
      const w = ((W - LW - 50) * c) / max;
      const t = svg('text', { class: 'label', x: 0, y: y + 15 }, short, svg('title', null, label));
      if (labelOf && /^[0-9A-Fa-f:.]{2,45}$/.test(label)) {
        // An SVG link to the source page (same rule as `link()`).
        const a = svg('a', { class: 'link', 'data-ip': label }, t);
        a.setAttribute('href', '#/source/' + encodeURIComponent(label));
        root.appendChild(a);
      } else {
        root.appendChild(t);
      }
      root.appendChild(svg('rect', { class: 'hbar', x: LW, y: y + 4, width: Math.max(1, w).toFixed(1), height: row - 8 },
        svg('title', null, label + ': ' + c)));
      root.appendChild(svg('text', { x: (LW + w + 6).toFixed(1), y: y + 15 }, String(c)));
    });
    if (!top.length) root.appendChild(svg('text', { class: 'empty', x: W / 2, y: row, 'text-anchor': 'middle' }, 'no data yet'));
    box.appendChild(root);
  }

  // ---- world map ------------------------------------------------------------

  async function loadWorld() {
    if (state.world) return state.world;
    const r = await fetch('/ui/world.json', { cache: 'force-cache' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    state.world = JSON.parse(await r.text());
    return state.world;
  }

  // Shade of a country with `n` of `max` events (log scale).
  function shade(n, max) {
    if (!n) return null;
    const t = Math.log(1 + n) / Math.log(1 + Math.max(1, max));
    const mix = (a, b) => Math.round(a + (b - a) * t);
    const [r, g, b] = [mix(0x4a, 0xf5), mix(0x3c, 0xb8), mix(0x1a, 0x2e)];
    return 'rgb(' + r + ',' + g + ',' + b + ')';
  }

  // `rows` is the stats' `top_countries` ([{value: "DE", name, count}]),
  // absent when the core does not enrich events.
  async function drawMap(rows) {
    const box = $('map');
    const note = $('map-note');
    let world;
    try {
      world = await loadWorld();
    } catch (e) {
      note.textContent = 'the map could not be loaded: ' + e.message;
      return;
    }
    const counts = new Map();
    const names = new Map();
    for (const r of Array.isArray(rows) ? rows : []) {
      const code = text(r.value).toUpperCase();
      if (!/^[A-Z]{2}$/.test(code)) continue;
      counts.set(code, (counts.get(code) || 0) + (Number(r.count) || 0));
      if (r.name) names.set(code, text(r.name));
    }
    const max = Math.max(0, ...counts.values());
    clear(box);
    const root = svg('svg', { viewBox: '0 0 ' + Number(world.width) + ' ' + Number(world.height), role: 'img', 'aria-label': 'events by source country' });
    root.appendChild(svg('rect', { class: 'sea', x: 0, y: 0, width: world.width, height: world.height }));
    for (const c of world.countries || []) {
      const code = c.code || '';
      const n = counts.get(code) || 0;
      const name = names.get(code) || text(c.name);
      root.appendChild(svg('path', {
        class: 'country' + (n ? ' hit' : ''), d: text(c.d), 'data-code': code, 'data-count': n, fill: shade(n, max),
      }, svg('title', null, name + (code ? ' (' + code + ')' : '') + ': ' + n + (n === 1 ? ' event' : ' events'))));
    }
    box.appendChild(root);
    const list = $('countries');
    clear(list);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
    for (const [code, n] of top) {
      list.appendChild(el('tr', { 'data-code': code },
        el('td', null, (names.get(code) || code) + ' (' + code + ')'),
        el('td', { class: 'num mono' }, String(n))));
    }
    if (!Array.isArray(rows)) {
      note.textContent = 'no country data: the core enriches events with a GeoIP database when started with --geoip';
    } else {
      note.textContent = rangeLabel() + (top.length ? '' : ', no event with a known country');
    }
    if (!top.length) list.appendChild(el('tr', null, el('td', { colspan: 2, class: 'dim' }, 'none')));
  }

  // ---- event detail -----------------------------------------------------------

  // JSON text indented, token by token: big integers stay as sent.
  function prettyJson(raw) {
    let out = '';
    let depth = 0;
    let inString = false;
    const pad = () => '\n' + '  '.repeat(depth);
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i];
      if (inString) {
        out += c;
        if (c === '\\') {
          out += raw[i + 1] || '';
          i++;
        } else if (c === '"') {
          inString = false;
        }
        continue;
      }
      if (c === '"') {
        inString = true;
        out += c;
      } else if (c === '{' || c === '[') {
        const close = c === '{' ? '}' : ']';
        if (raw[i + 1] === close) {
          out += c + close;
          i++;
          continue;
        }
        depth++;
        out += c + pad();
      } else if (c === '}' || c === ']') {
        depth = Math.max(0, depth - 1);
        out += pad() + c;
      } else if (c === ',') {
        out += ',' + pad();
      } else if (c === ':') {
        out += ': ';
      } else if (!/\s/.test(c)) {
        out += c;
      }
    }
    return out;
  }

  function closeDetail() {
    $('detail').hidden = true;
  }

  function fieldRow(name, value) {
    const v = value instanceof Node ? value : el('span', null, text(value));
    return el('tr', { 'data-field': name }, el('th', null, name), el('td', { class: 'mono value' }, v));
  }

  // Every field of an event, and its JSON. Stored events (with an id) are
  // read again by id, for every field exactly as stored.
  async function openDetail(e) {
    let raw = null;
    let full = e.raw || e;
    if (e.id) {
      try {
        raw = await apiText('/api/v1/events/' + encodeURIComponent(e.id));
        full = parseJson(raw);
      } catch (err) {
        toast('Reading event ' + e.id + ' failed: ' + err.message, true);
      }
    }
    const d = full.data && typeof full.data === 'object' ? full.data : {};
    const box = $('detail-fields');
    clear(box);
    $('detail-title').textContent = 'Event ' + (full.id !== undefined ? text(full.id) : '(live, not yet read back)');
    const nodeId = idStr(full.node_id);
    box.appendChild(fieldRow('id', full.id));
    box.appendChild(fieldRow('node', el('span', null, nodeLink(nodeId, full.node_name || nodeName(nodeId)), ' (' + nodeId + ')')));
    for (const k of ['pot_id', 'pot_type', 'event_type', 'timestamp', 'seq']) box.appendChild(fieldRow(k, full[k]));
    if (full.geo && typeof full.geo === 'object') {
      for (const [k, v] of Object.entries(full.geo)) box.appendChild(fieldRow('geo.' + k, v));
    }
    for (const [k, v] of Object.entries(d)) {
      let value = v;
      if (k === 'src_ip' && typeof v === 'string') value = ipLink(v);
      else if (k === 'session' && v !== null && typeof v !== 'object') value = sessionLink(v, d.src_ip);
      box.appendChild(fieldRow('data.' + k, value));
    }
    state.detailText = raw !== null ? raw : JSON.stringify(full);
    $('detail-raw').textContent = prettyJson(state.detailText);
    $('detail').hidden = false;
    $('detail-close').focus();
  }

  async function copyDetail() {
    const t = state.detailText;
    try {
      await navigator.clipboard.writeText(t);
    } catch (_) {
      // No clipboard permission: copy through a selected text area.
      const area = el('textarea', { class: 'offscreen', readonly: true });
      area.value = t;
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    $('detail-copy').setAttribute('data-copied', String(t.length));
    toast('Copied the event as JSON (' + t.length + ' characters).');
  }

  // ---- pages: source, session, node -------------------------------------------

  function page() {
    return $('page');
  }

  function panel(title, ...children) {
    return el('section', { class: 'panel' }, el('h2', null, title), ...children);
  }

  function table(cls, heads, rows, empty) {
    const body = el('tbody');
    for (const r of rows) body.appendChild(r);
    if (!rows.length) body.appendChild(el('tr', null, el('td', { colspan: heads.length, class: 'dim' }, empty || 'none')));
    return el('table', { class: cls }, el('thead', null, el('tr', null, heads.map((h) => el('th', null, h)))), body);
  }

  const td = (v, cls) => (v instanceof Node ? el('td', { class: cls }, v) : el('td', { class: cls, title: text(v) }, text(v)));

  function countOf(list) {
    const total = list && list.total !== undefined ? Number(list.total) : 0;
    const shown = list && Array.isArray(list.items) ? list.items.length : 0;
    return shown < total ? ' (' + shown + ' of ' + total + (list.capped ? '+' : '') + ')' : ' (' + total + ')';
  }

  function geoText(g) {
    if (!g || typeof g !== 'object') return null;
    if (g.net) return 'network: ' + text(g.net);
    const parts = [];
    if (g.country_name || g.country) parts.push(text(g.country_name || g.country) + (g.country ? ' (' + text(g.country) + ')' : ''));
    if (g.city) parts.push(text(g.city));
    if (g.asn !== undefined && g.asn !== null) parts.push('AS' + text(g.asn) + (g.as_org ? ' ' + text(g.as_org) : ''));
    return parts.length ? parts.join(' · ') : null;
  }

  function pageHead(title, value, ...rest) {
    return el('div', { class: 'page-head' },
      el('a', { class: 'back' }, '← Dashboard'),
      el('h2', null, title + ' ', el('span', { class: 'mono subject' }, text(value))),
      ...rest);
  }

  function showHome() {
    state.pageGen++;
    state.nodePage = null;
    $('page').hidden = true;
    clear($('page'));
    $('home').hidden = false;
  }

  function showPage(...children) {
    const p = page();
    clear(p);
    $('home').hidden = true;
    p.hidden = false;
    for (const c of children) p.appendChild(c);
    const back = p.querySelector('a.back');
    if (back) back.href = '#/';
    window.scrollTo(0, 0);
  }

  function failPage(title, value, err) {
    showPage(pageHead(title, value), el('p', { class: 'notice error' }, err.status === 404 ? 'Not found: ' + err.message : err.message));
  }

  function eventsTable(events, cls) {
    const rows = events.map((e) => eventRow(normalizeEvent(e), false));
    return table('feed ' + (cls || ''), ['Time (UTC)', 'Node', 'Pot', 'Type', 'Source', 'User', 'Password / input'], rows, 'No events.');
  }

  async function showSource(ip) {
    const gen = ++state.pageGen;
    showPage(pageHead('Source', ip), el('p', { class: 'dim' }, 'Loading…'));
    let s;
    let sessions = null;
    try {
      s = await api('GET', '/api/v1/sources/' + encodeURIComponent(ip));
      sessions = await api('GET', '/api/v1/sessions?limit=50&src_ip=' + encodeURIComponent(text(s.ip))).catch(() => null);
    } catch (e) {
      if (gen === state.pageGen) failPage('Source', ip, e);
      return;
    }
    if (gen !== state.pageGen) return;
    const geo = geoText(s.geo);
    const facts = el('dl', { class: 'facts', id: 'source-facts' },
      el('dt', null, 'First seen'), el('dd', { class: 'mono', 'data-fact': 'first_seen' }, text(s.first_seen)),
      el('dt', null, 'Last seen'), el('dd', { class: 'mono', 'data-fact': 'last_seen' }, text(s.last_seen)),
      el('dt', null, 'Events'), el('dd', { 'data-fact': 'event_count' }, text(s.event_count) + (s.complete ? '' : ' (the newest; there are more)')),
      el('dt', null, 'Location'), el('dd', { 'data-fact': 'geo' }, geo || 'unknown'));
    const items = (l) => (l && Array.isArray(l.items) ? l.items : []);
    const touched = items(s.pots).map((p, i) => el('tr', { 'data-pot': text(p.pot_id) },
      td(String(i + 1), 'num'), td(nodeLink(idStr(p.node_id), p.node_name || idStr(p.node_id))), td(p.pot_id, 'mono'),
      td(p.pot_type, 'mono'), td(shortTime(p.first_seen), 'mono'), td(shortTime(p.last_seen), 'mono'), td(p.count, 'num')));
    const ports = items(s.ports).map((p) => el('tr', { 'data-port': text(p.port) }, td(p.port, 'mono'), td(p.count, 'num')));
    const creds = items(s.credentials).map((c) => el('tr', { class: 'cred' },
      td(c.username, 'mono user'), td(c.password, 'mono pass'), td(c.count, 'num')));
    const cmds = items(s.commands).map((c) => el('tr', { class: 'cmd' },
      td(shortTime(c.timestamp), 'mono'), td(c.session ? sessionLink(c.session, s.ip) : '', 'mono'), td(c.input, 'mono input')));
    const fp = s.fingerprints || {};
    const fpList = (key, title) => {
      const l = fp[key];
      return el('div', { class: 'fp', 'data-fp': key }, el('h3', null, title + countOf(l)),
        el('ul', { class: 'plain' }, items(l).map((v) => el('li', { title: v.hash ? 'JA3 hash ' + text(v.hash) : null },
          el('span', { class: 'mono value' }, text(v.value)), ' ', el('span', { class: 'dim' }, '×' + text(v.count))))));
    };
    const sessRows = (sessions && Array.isArray(sessions.sessions) ? sessions.sessions : []).map((x) => el('tr', { 'data-session': text(x.session) },
      td(sessionLink(x.session, s.ip)), td(nodeLink(idStr(x.node_id), x.node_name || idStr(x.node_id))), td(x.pot_id, 'mono'),
      td(shortTime(x.first_seen), 'mono'), td(x.events, 'num'), td(x.commands, 'num'),
      td((x.logins || []).map((l) => text(l.username) + (l.success ? ' ✓' : '')).join(', '), 'mono')));
    const timeline = s.timeline || {};
    const tl = eventsTable(timeline.events || [], 'timeline');
    const more = button('Load more', 'small', async () => {
      if (!more.dataset.cursor) return;
      more.disabled = true;
      try {
        const q = new URLSearchParams({ src_ip: text(s.ip), cursor: more.dataset.cursor, limit: '200' });
        const pageData = await api('GET', '/api/v1/events?' + q.toString());
        const body = tl.querySelector('tbody');
        for (const e of pageData.events || []) body.appendChild(eventRow(normalizeEvent(e), false));
        more.dataset.cursor = pageData.next_cursor || '';
      } catch (e) {
        toast('Loading more events failed: ' + e.message, true);
      }
      more.disabled = !more.dataset.cursor;
      more.hidden = !more.dataset.cursor;
    }, { 'data-action': 'more' });
    more.dataset.cursor = timeline.next_cursor || '';
    more.hidden = !timeline.next_cursor;
    showPage(
      pageHead('Source', s.ip, geo ? el('span', { class: 'badge geo' }, geo) : null),
      el('div', { class: 'grid2' },
        panel('Summary', facts),
        panel('Nodes and pots, in the order first touched' + countOf(s.pots), table('touched', ['#', 'Node', 'Pot', 'Type', 'First', 'Last', 'Events'], touched))),
      el('div', { class: 'grid3' },
        panel('Ports probed' + countOf(s.ports), table('ports', ['Port', 'Count'], ports)),
        panel('Credentials tried' + countOf(s.credentials), table('credentials', ['Username', 'Password', 'Count'], creds)),
        panel('Fingerprints', fpList('ssh_client_versions', 'SSH client versions'), fpList('hassh', 'HASSH'),
          fpList('user_agents', 'HTTP user agents'), fpList('ja3', 'TLS JA3'), fpList('sni', 'TLS SNI'))),
      panel('Commands typed' + countOf(s.commands), table('commands', ['Time (UTC)', 'Session', 'Input'], cmds)),
      panel('Sessions' + (sessions ? ' (' + text(sessions.total) + ')' : ''), table('sessions', ['Session', 'Node', 'Pot', 'Started', 'Events', 'Commands', 'Logins'], sessRows)),
      panel('Timeline, newest first', tl, more));
  }

  async function showSession(id, srcIp) {
    const gen = ++state.pageGen;
    showPage(pageHead('Session', id), el('p', { class: 'dim' }, 'Loading…'));
    let s;
    try {
      const q = srcIp ? '?src_ip=' + encodeURIComponent(srcIp) : '';
      s = await api('GET', '/api/v1/sessions/' + encodeURIComponent(id) + q);
    } catch (e) {
      if (gen === state.pageGen) failPage('Session', id, e);
      return;
    }
    if (gen !== state.pageGen) return;
    const cmds = Array.isArray(s.commands) ? s.commands : [];
    const term = el('div', { class: 'terminal mono', id: 'replay', role: 'log' });
    const line = (c) => el('div', { class: 'cmd', 'data-offset': text(c.offset_s) },
      el('span', { class: 'dim at' }, '[+' + (Number(c.offset_s) || 0).toFixed(1) + ' s ' + shortTime(c.timestamp) + '] '),
      el('span', { class: 'prompt' }, '$ '), el('span', { class: 'input' }, text(c.input)));
    const showAll = () => {
      clear(term);
      for (const c of cmds) term.appendChild(line(c));
      if (!cmds.length) term.appendChild(el('div', { class: 'dim' }, 'No command was typed in this session.'));
    };
    let timer = null;
    const replay = button('Replay', 'small', () => {
      clearTimeout(timer);
      clear(term);
      let i = 0;
      const next = () => {
        if (gen !== state.pageGen || i >= cmds.length) return;
        const c = cmds[i++];
        term.appendChild(line(c));
        const at = Number(c.offset_s) || 0;
        const following = cmds[i] ? Number(cmds[i].offset_s) || 0 : at;
        // Real pauses, at most 1.5 s each.
        timer = setTimeout(next, Math.min(1500, Math.max(150, (following - at) * 1000)));
      };
      next();
    }, { 'data-action': 'replay' });
    showAll();
    const facts = el('dl', { class: 'facts', id: 'session-facts' },
      el('dt', null, 'Node'), el('dd', null, nodeLink(idStr(s.node_id), s.node_name || idStr(s.node_id))),
      el('dt', null, 'Pot'), el('dd', { class: 'mono' }, text(s.pot_id) + ' (' + text(s.pot_type) + ')'),
      el('dt', null, 'From'), el('dd', { class: 'mono', 'data-fact': 'src' }, s.src_ip ? ipLink(s.src_ip, s.src_port !== null && s.src_port !== undefined ? ':' + text(s.src_port) : '') : 'unknown'),
      el('dt', null, 'To port'), el('dd', { class: 'mono' }, text(s.dst_port) + (s.protocol ? ' (' + text(s.protocol) + ')' : '')),
      el('dt', null, 'Started'), el('dd', { class: 'mono', 'data-fact': 'first_seen' }, text(s.first_seen)),
      el('dt', null, 'Ended'), el('dd', { class: 'mono' }, text(s.last_seen) + (s.duration_s !== null && s.duration_s !== undefined ? ' (' + text(s.duration_s) + ' s)' : '')),
      el('dt', null, 'Events'), el('dd', { 'data-fact': 'event_count' }, text(s.event_count) + (s.truncated ? ' (the first ' + (s.events || []).length + ' shown)' : '')));
    showPage(
      pageHead('Session', s.session),
      el('div', { class: 'grid2' },
        panel('Connection', facts),
        panel('Commands, in order' + ' (' + cmds.length + ')', el('div', { class: 'actions-row' }, replay, button('Show all', 'small secondary', () => {
          clearTimeout(timer);
          showAll();
        })), term)),
      panel('Events, in order', eventsTable(s.events || [], 'session-events')));
  }

  async function sendNodeCommand(id, cmd) {
    const name = Object.keys(cmd)[0];
    try {
      await api('POST', nodePath(id, '/commands'), cmd);
      toast(name + ' sent to node ' + id);
      return true;
    } catch (e) {
      toast(name + ' for node ' + id + ' failed: ' + e.message, true);
      return false;
    }
  }

  // Logs and metrics a pot reported (its status details) kept by the page,
  // since each answer replaces the last one's details.
  function keepPotDetails(potId, details) {
    const np = state.nodePage;
    if (!np || !details || typeof details !== 'object') return false;
    const kept = np.pots.get(potId) || {};
    if (Array.isArray(details.lines)) kept.logs = details.lines;
    else if (details.rss_bytes !== undefined || details.cpu_seconds !== undefined || details.events !== undefined) kept.metrics = details;
    else return false;
    np.pots.set(potId, kept);
    return true;
  }

  function potResults(potId) {
    const kept = (state.nodePage && state.nodePage.pots.get(potId)) || {};
    const box = el('div', { class: 'pot-results', 'data-results': potId });
    if (kept.metrics) {
      const m = kept.metrics;
      box.appendChild(el('dl', { class: 'facts metrics' },
        Object.entries(m).flatMap(([k, v]) => [el('dt', null, k), el('dd', { class: 'mono', 'data-metric': k }, text(v))])));
    }
    if (kept.logs) {
      box.appendChild(el('pre', { class: 'logs mono' }, kept.logs.map((l) => text(l)).join('\n') || '(no log lines)'));
    }
    return box;
  }

  function renderPotResults(potId) {
    const old = page().querySelector('div.pot-results[data-results="' + CSS.escape(potId) + '"]');
    if (old) old.replaceWith(potResults(potId));
  }

  // Asks the pot for `cmd`; its answer arrives as a pot status (live
  // stream), with the node read again meanwhile in case the stream is down.
  async function askPot(nodeId, potId, cmd, since) {
    if (!(await sendNodeCommand(nodeId, cmd))) return;
    const gen = state.pageGen;
    for (let i = 0; i < 20 && gen === state.pageGen; i++) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        const n = await api('GET', nodePath(nodeId));
        const p = (n.pots || []).find((x) => x.pot_id === potId);
        if (p && p.updated_at !== since && keepPotDetails(potId, p.details)) {
          renderPotResults(potId);
          return;
        }
      } catch (_) {
        return;
      }
    }
  }

  async function showNode(id) {
    const gen = ++state.pageGen;
    showPage(pageHead('Node', id), el('p', { class: 'dim' }, 'Loading…'));
    let n;
    let sessions = null;
    try {
      n = await api('GET', nodePath(id));
      sessions = await api('GET', '/api/v1/sessions?limit=20&node_id=' + encodeURIComponent(id)).catch(() => null);
    } catch (e) {
      if (gen === state.pageGen) failPage('Node', id, e);
      return;
    }
    if (gen !== state.pageGen) return;
    const nodeId = idStr(n.node_id);
    if (!state.nodePage || state.nodePage.id !== nodeId) state.nodePage = { id: nodeId, pots: new Map() };
    const pots = Array.isArray(n.pots) ? n.pots : [];
    const ext = pots.find((p) => p.pot_type === 'extension' && p.details && typeof p.details === 'object');
    const facts = el('dl', { class: 'facts', id: 'node-facts' },
      el('dt', null, 'Id'), el('dd', { class: 'mono' }, nodeId),
      el('dt', null, 'Type'), el('dd', null, text(n.node_type) + ((n.capabilities || []).length ? ' · ' + (n.capabilities || []).map(text).join(', ') : '')),
      el('dt', null, 'Status'), el('dd', null, el('span', { class: 'badge', 'data-state': text(n.status) }, text(n.status)),
        ' ', n.connected ? 'connected' + (n.core_name ? ' to ' + text(n.core_name) : '') : 'disconnected'),
      el('dt', null, 'Agent'), el('dd', { class: 'mono' }, text(n.agent_version)),
      el('dt', null, 'Address'), el('dd', { class: 'mono' }, text(n.peer_address || (text(n.address) + ':' + text(n.port)))),
      el('dt', null, 'Registered'), el('dd', { class: 'mono' }, text(n.registered_at)),
      el('dt', null, 'Last seen'), el('dd', { class: 'mono' }, text(n.last_seen) + ' (' + ago(n.last_seen) + ')'));
    const parts = [pageHead('Node', n.node_name, el('span', { class: 'dim mono' }, 'id ' + nodeId)), panel('Node', facts)];
    if (ext) {
      const d = ext.details;
      const ports = (l) => (Array.isArray(l) ? l.map(text).join(', ') : '') || 'none';
      const skipped = (Array.isArray(d.skipped) ? d.skipped : []).map((x) => el('tr', { 'data-skipped': text(x.port) },
        td(text(x.protocol).toUpperCase(), 'mono'), td(x.port, 'mono'), td(x.reason)));
      parts.push(panel('Tripwire ports',
        el('dl', { class: 'facts', id: 'ports-taken' },
          el('dt', null, 'TCP taken'), el('dd', { class: 'mono', 'data-taken': 'tcp' }, ports(d.tcp)),
          el('dt', null, 'UDP taken'), el('dd', { class: 'mono', 'data-taken': 'udp' }, ports(d.udp))),
        el('h3', null, 'Skipped'),
        table('skipped', ['Protocol', 'Port', 'Why'], skipped, 'No port was skipped.')));
    } else if ((n.capabilities || []).includes('extension')) {
      const started = (n.events || []).find((e) => e.type === 'Started' && e.description);
      parts.push(panel('Tripwire ports', el('p', { class: 'mono' }, started ? text(started.description) : 'This node has not reported its ports.')));
    }
    const potRows = pots.filter((p) => p.pot_type !== 'extension').flatMap((p) => {
      const potId = text(p.pot_id);
      if (p.details) keepPotDetails(potId, p.details);
      const ask = (label, cmd, action) => button(label, 'small', () => askPot(nodeId, potId, cmd, p.updated_at), { 'data-action': action });
      return [
        el('tr', { 'data-pot-id': potId },
          td(potId, 'mono'), td(p.pot_type, 'mono'),
          td(el('span', { class: 'badge', 'data-state': text(p.status) }, text(p.status))),
          td(p.message), td(shortTime(p.updated_at), 'mono'),
          el('td', { class: 'actions-row' },
            ask('Logs', { GetPotLogs: potId }, 'logs'),
            ask('Metrics', { GetPotMetrics: potId }, 'metrics'),
            ask('Status', { GetPotStatus: potId }, 'status'))),
        el('tr', { class: 'pot-more' }, el('td', { colspan: 6 }, potResults(potId))),
      ];
    });
    if (n.node_type === 'Full' || potRows.length) {
      parts.push(panel('Pots', table('pots-table', ['Pot', 'Type', 'Status', 'Message', 'Updated', ''], potRows, 'No pots.')));
    }
    const history = (n.status_history || []).map((h) => el('tr', null,
      td(shortTime(h.time), 'mono'), td(el('span', { class: 'badge', 'data-state': text(h.status) }, text(h.status))), td(h.note)));
    const events = (n.events || []).map((e) => el('tr', null,
      td(shortTime(e.time), 'mono'), td(e.type, 'mono'), td(e.message), td(e.description)));
    const sessRows = (sessions && Array.isArray(sessions.sessions) ? sessions.sessions : []).map((x) => el('tr', { 'data-session': text(x.session) },
      td(sessionLink(x.session, x.src_ip)), td(x.src_ip ? ipLink(x.src_ip) : '', 'mono'), td(x.pot_id, 'mono'),
      td(shortTime(x.first_seen), 'mono'), td(x.events, 'num'), td(x.commands, 'num')));
    parts.push(el('div', { class: 'grid2' },
      panel('Status history', table('history', ['Time (UTC)', 'Status', 'Note'], history, 'No status change recorded.')),
      panel('Node events', table('node-events', ['Time (UTC)', 'Type', 'Message', 'Description'], events, 'No events.'))));
    parts.push(panel('Recent sessions', table('sessions', ['Session', 'Source', 'Pot', 'Started', 'Events', 'Commands'], sessRows)));
    showPage(...parts);
  }

  function route() {
    if (!state.running) return;
    const hash = location.hash.replace(/^#/, '');
    const [path, query] = hash.split('?');
    const m = /^\/(source|session|node|event)\/(.+)$/.exec(path || '');
    let value = null;
    if (m) {
      try {
        value = decodeURIComponent(m[2]);
      } catch (_) {
        value = null;
      }
    }
    closeDetail();
    if (!m || value === null) {
      showHome();
      return;
    }
    const params = new URLSearchParams(query || '');
    if (m[1] === 'source') showSource(value);
    else if (m[1] === 'session') showSession(value, params.get('src_ip'));
    else if (m[1] === 'node') showNode(value);
    else if (m[1] === 'event') {
      showHome();
      openDetail({ id: value, node_id: '', data: {} });
    }
  }

  // ---- live stream (WebSocket, docs/protocol.md §7) -----------------------------

  function setLive(s, label) {
    const b = $('live');
    b.setAttribute('data-state', s);
    b.textContent = label || s;
  }

  function send(message, onReply) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    state.pending.push(onReply || (() => {}));
    state.ws.send(JSON.stringify({ version: 2, message }));
  }

  function openSocket() {
    if (!state.running || state.streamPort === null) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = scheme + '://' + location.hostname + ':' + state.streamPort + '/?token=' + encodeURIComponent(state.token);
    setLive('connecting', 'connecting…');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      reconnectLater();
      return;
    }
    state.ws = ws;
    state.pending = [];
    ws.addEventListener('open', () => {
      send({ BackendCommand: { Subscribe: { topics: ['events', 'status', 'nodes'] } } }, (r) => {
        if (r.Success) {
          state.wsBackoff = 1000;
          setLive('live', 'live');
          // Catch up on what happened while the stream was down.
          refreshNodes().catch(() => {});
        } else {
          toast('Subscribing failed: ' + text(r.Failure), true);
        }
      });
    });
    ws.addEventListener('message', (m) => {
      if (ws !== state.ws) return;
      let env;
      try {
        env = parseJson(typeof m.data === 'string' ? m.data : '');
      } catch (_) {
        return;
      }
      onStream(env && env.message, env && env.cursor);
    });
    ws.addEventListener('close', () => {
      if (ws !== state.ws) return;
      state.ws = null;
      reconnectLater();
    });
  }

  function reconnectLater() {
    if (!state.running) return;
    const wait = state.wsBackoff;
    state.wsBackoff = Math.min(wait * 2, 15000);
    setLive('off', 'offline, retry in ' + Math.round(wait / 1000) + ' s');
    clearTimeout(state.wsTimer);
    state.wsTimer = setTimeout(openSocket, wait);
  }

  // `cursor` is the envelope's: a stored event's id (docs/protocol.md §7).
  function onStream(msg, cursor) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.BackendResponse) {
      const r = msg.BackendResponse;
      if (typeof r.Failure === 'string' && /^lagged \d+$/.test(r.Failure)) {
        toast('The live feed fell behind (' + r.Failure + '); reloading.', true);
        loadEvents().catch(() => {});
        scheduleNodeRefresh();
        return;
      }
      if (r.Failure === 'invalid API token') notice('The stream refused the API token.', true);
      const handler = state.pending.shift();
      if (handler) handler(r);
      return;
    }
    if (msg.PotEvent) {
      liveEvent(msg.PotEvent, cursor);
      return;
    }
    if (msg.NodeStatusUpdate) {
      const u = msg.NodeStatusUpdate;
      const n = state.nodes.get(idStr(u.node_id));
      if (n) {
        const changed = n.status !== text(u.status);
        n.status = text(u.status);
        n.last_seen = new Date().toISOString();
        renderNodesSoon();
        // A heartbeat changes nothing else; a new status may (connection, pots).
        if (changed) scheduleNodeRefresh();
      } else {
        scheduleNodeRefresh();
      }
      return;
    }
    if (msg.PotStatusUpdate) {
      const u = msg.PotStatusUpdate;
      const n = state.nodes.get(idStr(u.node_id));
      if (!n) {
        scheduleNodeRefresh();
        return;
      }
      n.last_seen = new Date().toISOString();
      n.pots = n.pots || [];
      const i = n.pots.findIndex((p) => p.pot_id === u.pot_id);
      const gone = u.details && u.details.uninstalled === true;
      if (gone) {
        if (i >= 0) n.pots.splice(i, 1);
      } else if (i >= 0) {
        Object.assign(n.pots[i], { status: u.status, message: u.message, pot_type: u.pot_type });
      } else {
        n.pots.push({ pot_id: u.pot_id, pot_type: u.pot_type, status: u.status, message: u.message });
      }
      renderNodesSoon();
      if (state.nodePage && state.nodePage.id === idStr(u.node_id) && keepPotDetails(text(u.pot_id), u.details)) {
        renderPotResults(text(u.pot_id));
      }
      if (u.status === 'Failed') toast('Pot ' + text(u.pot_id) + ' on ' + nodeName(idStr(u.node_id)) + ' failed: ' + text(u.message), true);
      return;
    }
    if (msg.NodeEvent) {
      const e = msg.NodeEvent;
      const kind = text(e.type || (typeof e.event === 'string' ? e.event : ''));
      if (kind === 'Alarm' || kind === 'Error') {
        toast(nodeName(idStr(e.node_id)) + ': ' + kind + ' ' + text(e.description || e.message), true);
      }
    }
  }

  // ---- lifecycle ------------------------------------------------------------

  async function start() {
    stop();
    state.running = true;
    notice('');
    try {
      const cfgRes = await fetch('/ui/config.json', { cache: 'no-store' });
      const cfg = parseJson(await cfgRes.text());
      state.streamPort = Number(cfg.stream_port);
      await refreshNodes();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) notice('Cannot reach the core: ' + e.message, true);
      if (!state.running) return;
      state.running = false;
      return;
    }
    $('app').hidden = false;
    route();
    openSocket();
    loadEvents().catch((e) => toast('Loading events failed: ' + e.message, true));
    refreshStats().catch(() => {});
    refreshCores().catch(() => {});
    refreshAlerts().catch(() => {});
    state.timers.push(setInterval(() => refreshNodes().catch(() => {}), NODES_EVERY_MS));
    state.timers.push(setInterval(() => refreshCores().catch(() => {}), NODES_EVERY_MS));
    state.timers.push(setInterval(() => refreshAlerts().catch(() => {}), NODES_EVERY_MS));
    state.timers.push(setInterval(() => refreshStats().catch(() => {}), STATS_EVERY_MS));
    state.timers.push(setInterval(updateAges, 5000));
  }

  function updateAges() {
    for (const td of document.querySelectorAll('td[data-last-seen]')) {
      td.textContent = ago(td.getAttribute('data-last-seen'));
    }
  }

  function stop() {
    state.running = false;
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    clearTimeout(state.wsTimer);
    clearTimeout(state.nodesTimer);
    state.nodesTimer = null;
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close();
    }
    setLive('off', 'offline');
  }

  function init() {
    const input = $('token');
    state.token = sessionStorage.getItem(TOKEN_KEY) || '';
    if (state.token) input.placeholder = 'token saved for this tab';
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (t) {
        state.token = t;
        sessionStorage.setItem(TOKEN_KEY, t);
        input.value = '';
        input.placeholder = 'token saved for this tab';
      }
      if (!state.token) {
        notice('Enter the API token (honeybee-core writes it to <data_dir>/api-token).', false);
        return;
      }
      start();
    });
    $('token-forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = '';
      input.placeholder = 'paste the API token';
      stop();
      $('app').hidden = true;
      notice('Token forgotten.', false);
    });
    $('filters').addEventListener('submit', (e) => {
      e.preventDefault();
      readFilters();
      loadEvents().catch((err) => toast('Loading events failed: ' + err.message, true));
    });
    $('f-clear').addEventListener('click', () => {
      $('f-node').value = '';
      $('f-pot').value = '';
      $('f-type').value = '';
      $('f-src').value = '';
      readFilters();
      loadEvents().catch((err) => toast('Loading events failed: ' + err.message, true));
    });
    $('f-pause').addEventListener('change', (e) => {
      state.paused = e.target.checked;
    });
    $('range').addEventListener('submit', (e) => {
      e.preventDefault();
      applyRange();
    });
    $('range-pick').addEventListener('change', () => {
      showRangeInputs();
      if ($('range-pick').value !== 'custom') applyRange();
    });
    showRangeInputs();
    $('detail-close').addEventListener('click', closeDetail);
    $('detail-copy').addEventListener('click', () => {
      copyDetail().catch((err) => toast('Copying failed: ' + err.message, true));
    });
    $('detail').addEventListener('click', (e) => {
      if (e.target === $('detail')) closeDetail();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') closeDetail();
    });
    window.addEventListener('hashchange', route);
    if (state.token) {
      start();
    } else {
      notice('Enter the API token to connect.', false);
    }
  }

  // For tests: the JSON helper (its exactness is checked in a browser) and a
  // way to cut the stream, to see the page reconnect.
  window.HoneyBeeDashboard = Object.freeze({
    parseJson,
    dropStream: () => {
      if (state.ws) state.ws.close();
    },
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
