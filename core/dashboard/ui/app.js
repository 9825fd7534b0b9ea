// HoneyBee dashboard: plain JS, no dependencies, no build step.
//
// Safety rules of this file (attack data is hostile):
// - data only ever reaches the DOM as text (textContent, createTextNode,
//   setAttribute of non-URL, non-handler attributes); never innerHTML;
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
        n.approved !== false && [
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
    } else {
      actions.appendChild(installForm(id));
    }

    return el('tr', { 'data-node-id': id },
      el('td', null,
        el('div', { class: 'node-name' }, text(n.node_name)),
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
    const data = await api('GET', '/api/v1/events?' + q.toString());
    state.events = ((data && data.events) || []).map(normalizeEvent).filter(matches).slice(0, MAX_FEED);
    renderEvents();
  }

  function eventRow(e, fresh) {
    const d = e.data;
    const src = d.src_ip === undefined ? '' : text(d.src_ip) + (d.src_port !== undefined ? ':' + text(d.src_port) : '');
    const secret = [d.password, d.input, d.url, d.message].find((v) => v !== undefined && v !== null);
    const cell = (v, cls) => el('td', { class: cls, title: text(v) }, text(v));
    return el('tr', { class: fresh ? 'new' : null, 'data-event-type': e.event_type },
      cell(shortTime(e.timestamp), 'mono'),
      cell(nodeName(e.node_id)),
      cell(e.pot_id, 'mono'),
      cell(e.event_type, 'mono'),
      cell(src, 'mono'),
      el('td', { class: 'mono user', title: text(d.username) }, text(d.username)),
      cell(secret, 'mono'));
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

  function liveEvent(raw) {
    const e = normalizeEvent(raw);
    const n = state.nodes.get(e.node_id);
    if (n) n.last_seen = new Date().toISOString();
    if (state.paused || !matches(e)) return;
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

  async function refreshStats() {
    const s = await api('GET', '/api/v1/stats');
    if (!s) return;
    renderTotals(s.totals || {});
    minuteChart($('chart-minutes'), s.events_per_minute || []);
    barChart($('chart-sources'), s.top_source_ips || []);
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
    box.appendChild(item(t.events_in_window ?? 0, 'events, last 24 h'));
    box.appendChild(item(t.nodes ?? 0, 'nodes'));
    box.appendChild(item(t.pots ?? 0, 'pots'));
  }

  function minuteChart(box, rows) {
    clear(box);
    const W = 900, H = 150, L = 36, B = 20, T = 8;
    const max = Math.max(1, ...rows.map((r) => Number(r.count) || 0));
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'events per minute, last hour' });
    root.appendChild(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B }));
    root.appendChild(svg('text', { x: L - 4, y: T + 8, 'text-anchor': 'end' }, String(max)));
    root.appendChild(svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, '0'));
    const slot = (W - L) / Math.max(1, rows.length);
    rows.forEach((r, i) => {
      const c = Number(r.count) || 0;
      const h = ((H - B - T) * c) / max;
      const bar = svg('rect', {
        class: 'bar', x: (L + i * slot + 1).toFixed(1), y: (H - B - h).toFixed(1),
        width: Math.max(1, slot - 2).toFixed(1), height: h.toFixed(1), 'data-count': c,
      }, svg('title', null, shortTime(r.minute) + ': ' + c));
      root.appendChild(bar);
      if ((i % 10 === 0 && i < rows.length - 5) || i === rows.length - 1) {
        const m = /T(\d\d:\d\d)/.exec(text(r.minute));
        const last = i === rows.length - 1;
        const x = last ? W : L + i * slot + slot / 2;
        root.appendChild(svg('text', { x: x.toFixed(1), y: H - 5, 'text-anchor': last ? 'end' : 'middle' }, m ? m[1] : ''));
      }
    });
    if (!rows.length) root.appendChild(svg('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data yet'));
    box.appendChild(root);
  }

  function barChart(box, rows) {
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
      root.appendChild(svg('text', { class: 'label', x: 0, y: y + 15 }, short, svg('title', null, label)));
      root.appendChild(svg('rect', { class: 'hbar', x: LW, y: y + 4, width: Math.max(1, w).toFixed(1), height: row - 8 },
        svg('title', null, label + ': ' + c)));
      root.appendChild(svg('text', { x: (LW + w + 6).toFixed(1), y: y + 15 }, String(c)));
    });
    if (!top.length) root.appendChild(svg('text', { class: 'empty', x: W / 2, y: row, 'text-anchor': 'middle' }, 'no data yet'));
    box.appendChild(root);
  }

  // ---- live stream (WebSocket, PROTOCOL.md §7) -----------------------------

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
      onStream(env && env.message);
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

  function onStream(msg) {
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
      liveEvent(msg.PotEvent);
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
