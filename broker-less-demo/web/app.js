// The demo page: browser clients on the WebSocket servers, the ring, the
// chosen topic's multicast tree and kill/restart controls, from the
// launcher's JSON API (launcher.cc). No framework: plain DOM and SVG.
//
// URL parameters: ?clients=alice@ws-1,bob@ws-2 (default: the load
// generator's users on the WebSocket servers in turn; "none" for none),
// ?topic=user.alice.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const params = new URLSearchParams(location.search);
const demo = window.demo = { cluster: [], load: {}, clients: [], topic: null, topicInfo: null };
let nextClientId = 1;

function $(id) { return document.getElementById(id); }
function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store' });
  return r.json();
}
function byName(name) { return demo.cluster.find(p => p.name === name); }
function byId(id) { return demo.cluster.find(p => p.id === id); }

// ---- Browser clients --------------------------------------------------------

class Client {
  constructor(user, server) {
    this.id = nextClientId++;
    this.user = user;
    this.server = server;
    this.state = 'connecting';
    this.events = [];  // {seq, api, event, server, gap}
    this.closed = false;
    this.render();
    this.connect();
  }
  connect() {
    if (this.closed) return;
    const p = byName(this.server);
    if (!p || p.state !== 'up' || !p.http) { this.retry(); return; }
    this.setState('connecting');
    const ws = this.ws = new WebSocket(`ws://${p.http}/ws?user=${encodeURIComponent(this.user)}`);
    ws.onmessage = m => this.onFrame(JSON.parse(m.data));
    ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.setState('closed'); this.retry(); } };
  }
  retry() { if (!this.closed) setTimeout(() => this.connect(), 1000); }
  onFrame(f) {
    if (f.type === 'status') { this.setState(f.active ? 'active' : 'joining'); return; }
    if (f.type !== 'event') return;
    const last = this.events.length ? this.events[this.events.length - 1].seq : null;
    const e = { seq: f.seq, server: f.server, api: f.event.api, event: f.event.event,
                user: f.event.user, gap: last !== null && f.seq !== last + 1 };
    this.events.push(e);
    const li = el('li', { class: 'fresh' + (e.gap ? ' gap' : ''), 'data-seq': e.seq },
      `#${e.seq} via ${e.api}: ${JSON.stringify(e.event)}`);
    this.list.prepend(li);
    while (this.list.children.length > 40) this.list.lastChild.remove();
    this.count.textContent = `${this.events.length} events` +
      (this.events.some(x => x.gap) ? ' (gap seen)' : '');
  }
  setState(s) { this.state = s; this.stateEl.textContent = s; this.stateEl.className = 'state ' + s; }
  close() { this.closed = true; if (this.ws) this.ws.close(); this.box.remove();
            demo.clients = demo.clients.filter(c => c !== this); refreshTopics(); }
  render() {
    this.box = el('div', { class: 'client', 'data-client': this.id, 'data-user': this.user,
                           'data-server': this.server });
    const h = el('h3');
    h.append(el('span', {}, `${this.user} @ ${this.server}`));
    this.stateEl = el('span', { class: 'state' });
    h.append(this.stateEl);
    const x = el('button', { class: 'close', title: 'disconnect' }, '\u00d7');
    x.onclick = () => this.close();
    h.append(x);
    this.count = el('div', { class: 'count' }, '0 events');
    this.list = el('ol', { class: 'events' });
    this.box.append(h, this.count, this.list);
    $('clients').append(this.box);
  }
}

function addClient(user, server) {
  const c = new Client(user, server);
  demo.clients.push(c);
  refreshTopics();
  return c;
}

// ---- Topic selection --------------------------------------------------------

function refreshTopics() {
  const names = new Set(demo.clients.map(c => 'user.' + c.user));
  for (const u of demo.load.users || []) names.add('user.' + u);
  if (demo.topic) names.add(demo.topic);
  const select = $('topic');
  const current = [...select.options].map(o => o.value).join();
  if (current !== [...names].join()) {
    select.replaceChildren(...[...names].map(n => el('option', { value: n }, n)));
  }
  if (!demo.topic && names.size) selectTopic([...names][0]);
  select.value = demo.topic;
}

async function selectTopic(name) {
  demo.topic = name;
  demo.topicInfo = null;
  refreshTopics();
  await refreshRoot();
}

async function refreshRoot() {
  if (!demo.topic) return;
  const name = demo.topic;
  const info = await getJson('/api/topic?name=' + encodeURIComponent(name));
  if (name === demo.topic) demo.topicInfo = info;
}

// The chosen topic's tree: {name -> {proc, entry}} for processes holding it.
function treeMembers() {
  const members = new Map();
  if (!demo.topicInfo) return members;
  for (const p of demo.cluster) {
    if (p.state === 'down') continue;
    const t = (p.topics || []).find(t => t.id === demo.topicInfo.id);
    if (t) members.set(p.id, { proc: p, entry: t });
  }
  return members;
}

// ---- Ring -------------------------------------------------------------------

function angleOf(hex) {
  return parseInt(hex.slice(0, 8), 16) / 4294967296 * 2 * Math.PI - Math.PI / 2;
}
function pointOn(hex, r, cx = 210, cy = 210) {
  const a = angleOf(hex);
  return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
}

function drawRing() {
  const s = $('ring');
  s.replaceChildren();
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 14, refY: 5,
                                 markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#f59e0b' }));
  defs.append(marker);
  s.append(defs, svg('circle', { cx: 210, cy: 210, r: 150, fill: 'none', stroke: '#d1d5db' }));
  const members = treeMembers();
  // Tree edges: parent -> child.
  for (const { proc, entry } of members.values()) {
    if (!entry.parent || !proc.id) continue;
    const parent = byId(entry.parent);
    if (!parent) continue;
    const [x1, y1] = pointOn(parent.id, 150), [x2, y2] = pointOn(proc.id, 150);
    // A parent that is down: the child has not noticed yet.
    s.append(svg('line', { x1, y1, x2, y2, class: parent.state === 'down' ? 'edge stale' : 'edge' }));
  }
  if (demo.topicInfo) {
    const [kx, ky] = pointOn(demo.topicInfo.id, 150);
    s.append(svg('rect', { x: kx - 5, y: ky - 5, width: 10, height: 10, fill: '#f59e0b',
                           transform: `rotate(45 ${kx} ${ky})` }));
    const [tx, ty] = pointOn(demo.topicInfo.id, 120);
    s.append(svg('text', { x: tx, y: ty, 'text-anchor': 'middle', 'font-weight': 'bold' },
                 demo.topicInfo.name));
  }
  for (const p of demo.cluster) {
    if (!p.id) continue;
    const [x, y] = pointOn(p.id, 150);
    const m = members.get(p.id);
    if (m && m.entry.root) s.append(svg('circle', { cx: x, cy: y, r: 11, class: 'root-ring' }));
    const dot = svg('circle', { cx: x, cy: y, r: 7, class: `${p.kind} ${p.state}`,
                                'data-node': p.name });
    dot.append(svg('title', {}, `${p.name} ${p.id} (${p.state})`));
    s.append(dot);
    const [lx, ly] = pointOn(p.id, 176);
    s.append(svg('text', { x: lx, y: ly + 3, 'text-anchor': 'middle' }, p.name));
  }
}

// ---- Tree -------------------------------------------------------------------

function drawTree() {
  const s = $('tree');
  s.replaceChildren();
  const members = treeMembers();
  $('tree-title').textContent = demo.topicInfo ? `${demo.topicInfo.name} (${demo.topicInfo.id.slice(0, 8)}\u2026)` : '';
  const children = new Map();
  const roots = [], detached = [];
  for (const m of members.values()) {
    if (m.entry.root) roots.push(m);
    else if (m.entry.parent && members.has(m.entry.parent)) {
      if (!children.has(m.entry.parent)) children.set(m.entry.parent, []);
      children.get(m.entry.parent).push(m);
    } else detached.push(m);
  }
  // Layered layout: leaves get consecutive columns, parents sit above the
  // middle of their children.
  let column = 0;
  const pos = new Map();
  let depthMax = 0;
  function place(m, depth) {
    depthMax = Math.max(depthMax, depth);
    const kids = (children.get(m.proc.id) || []).sort((a, b) => a.proc.name.localeCompare(b.proc.name));
    let x;
    if (!kids.length) x = column++;
    else { const xs = kids.map(k => place(k, depth + 1)); x = (xs[0] + xs[xs.length - 1]) / 2; }
    pos.set(m.proc.id, [x, depth]);
    return x;
  }
  roots.forEach(r => place(r, 0));
  const cols = Math.max(column, 1), w = 420, h = 260;
  const X = x => 30 + (cols === 1 ? (w - 60) / 2 : x * (w - 60) / (cols - 1));
  const Y = d => 30 + d * Math.min(60, (h - 60) / Math.max(depthMax, 1));
  for (const [id, [x, d]] of pos) {
    const m = members.get(id);
    if (m.entry.parent && pos.has(m.entry.parent)) {
      const [px, pd] = pos.get(m.entry.parent);
      s.append(svg('line', { x1: X(px), y1: Y(pd), x2: X(x), y2: Y(d), class: 'edge' }));
    }
  }
  for (const [id, [x, d]] of pos) {
    const m = members.get(id);
    if (m.entry.root) s.append(svg('circle', { cx: X(x), cy: Y(d), r: 13, class: 'root-ring' }));
    const c = svg('circle', { cx: X(x), cy: Y(d), r: 9, class: m.proc.kind, 'data-tree-node': m.proc.name });
    c.append(svg('title', {}, `${m.proc.name}: ${m.entry.children} children, ${m.entry.local_subscriptions} local subscribers, last seq ${m.entry.last_seq}`));
    s.append(c);
    s.append(svg('text', { x: X(x), y: Y(d) + 22, 'text-anchor': 'middle' },
                 m.proc.name + (m.entry.local_subscriptions ? ' \u2605' : '')));
  }
  const info = demo.topicInfo;
  let note = '';
  if (info && info.root && info.root.name) note = `root by lookup: ${info.root.name}. `;
  if (roots.length === 0 && info) note += 'no root holds the tree right now (repairing). ';
  if (detached.length) note += `rejoining: ${detached.map(m => m.proc.name).join(', ')}. `;
  note += '\u2605 = subscribers on that node.';
  $('tree-note').textContent = note;
}

// ---- Process table ----------------------------------------------------------

async function act(name, action) {
  await fetch(`/api/nodes/${name}/${action}`, { method: 'POST' });
  poll();
}

function drawTable() {
  const members = treeMembers();
  const rows = demo.cluster.map(p => {
    const tr = el('tr', { class: p.state, 'data-row': p.name });
    const m = members.get(p.id);
    const role = !m ? '' : m.entry.root ? 'root' : m.entry.local_subscriptions ? 'subscriber' : 'forwarder';
    tr.append(el('td', {}, `${p.name}`), el('td', { class: 'id' }, (p.id || '').slice(0, 8)),
              el('td', {}, p.state + (p.restarts ? ` (${p.restarts}\u00d7 restarted)` : '')),
              el('td', {}, role));
    const td = el('td');
    const kill = el('button', { 'data-kill': p.name }, 'kill');
    kill.disabled = p.state === 'down';
    kill.onclick = () => act(p.name, 'kill');
    const restart = el('button', { 'data-restart': p.name }, 'restart');
    restart.onclick = () => act(p.name, 'restart');
    td.append(kill, ' ', restart);
    tr.append(td);
    return tr;
  });
  $('nodes').tBodies[0].replaceChildren(...rows);
}

function fillSelect(select, names) {
  const value = select.value;
  if ([...select.options].map(o => o.value).join() !== names.join()) {
    select.replaceChildren(...names.map(n => el('option', { value: n }, n)));
    if (names.includes(value)) select.value = value;
  }
}

// ---- Polling ----------------------------------------------------------------

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const c = await getJson('/api/cluster');
    demo.cluster = c.processes;
    demo.load = c.load;
    const up = c.processes.filter(p => p.state === 'up').length;
    $('summary').textContent = `${up} of ${c.processes.length} processes up \u00b7 load: ` +
      `${c.load.accepted} events accepted, ${c.load.failed} failed (${c.load.rate}/s for ` +
      `${(c.load.users || []).join(', ')}) \u00b7 logs: ${c.log_dir}`;
    fillSelect($('connect-server'), c.processes.filter(p => p.kind === 'ws').map(p => p.name));
    fillSelect($('publish-api'), c.processes.filter(p => p.kind === 'api').map(p => p.name));
    refreshTopics();
    drawRing();
    drawTree();
    drawTable();
  } catch (e) {
    $('summary').textContent = 'launcher unreachable: ' + e;
  } finally {
    polling = false;
  }
}

async function start() {
  await poll();
  const wsServers = demo.cluster.filter(p => p.kind === 'ws').map(p => p.name);
  const spec = params.get('clients');
  if (spec === null) {
    (demo.load.users || []).forEach((u, i) => addClient(u, wsServers[i % wsServers.length]));
  } else if (spec !== 'none' && spec !== '') {
    for (const item of spec.split(',')) {
      const [user, server] = item.split('@');
      addClient(user, server || wsServers[0]);
    }
  }
  if (params.get('topic')) await selectTopic(params.get('topic'));
  $('topic').onchange = e => selectTopic(e.target.value);
  $('connect-form').onsubmit = e => {
    e.preventDefault();
    addClient($('connect-user').value, $('connect-server').value);
  };
  $('publish-form').onsubmit = async e => {
    e.preventDefault();
    await fetch('/api/publish', { method: 'POST', body: JSON.stringify({
      api: $('publish-api').value, user: $('publish-user').value,
      event: { text: $('publish-text').value, from: 'page' } }) });
  };
  setInterval(poll, 700);
  setInterval(refreshRoot, 2000);
  demo.ready = true;
}

start();
