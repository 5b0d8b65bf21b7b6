// dkvs console: draws /api/ring, /api/key, /api/servers and /api/moves of the server
// that serves this page, refreshed every POLL_MS while the tab is
// visible. Plain DOM and SVG; nothing is loaded from elsewhere.
'use strict';

(() => {
  const POLL_MS = 1500;
  const FETCH_TIMEOUT_MS = 5000;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
    '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#8cd17d'];
  const CX = 300, CY = 300, R = 230;

  const st = {
    view: 'ring',
    ringSig: '',     // the ring drawn: rebuilt only when it changes
    ring: null,      // last /api/ring
    key: null,       // the key looked up, or null
    n: 0,            // its number of homes
    nSet: false,     // N input set from the server's default
    timer: null,
    running: false,
    again: false,
  };

  const $ = (id) => document.getElementById(id);

  function colour(i) {
    return i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.508) % 360}, 55%, 50%)`;
  }

  // h builds an HTML element: h('td', {class: 'x'}, 'text', child...).
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  // s builds an SVG element.
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  // getJSON fetches one endpoint; a server that stopped (SIGSTOP) would
  // never answer, so a request gives up after FETCH_TIMEOUT_MS.
  async function getJSON(url) {
    const r = await fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(url + ': ' + msg);
    }
    return r.json();
  }

  // ---- formatting

  function fmtBytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + u[i];
  }

  function fmtDur(ms) {
    let sec = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(sec / 86400); sec %= 86400;
    const hr = Math.floor(sec / 3600); sec %= 3600;
    const m = Math.floor(sec / 60); sec %= 60;
    if (d) return `${d}d ${hr}h`;
    if (hr) return `${hr}h ${m}m`;
    if (m) return `${m}m ${sec}s`;
    return `${sec}s`;
  }

  function fmtAgo(ms) { return ms < 1000 ? 'just now' : fmtDur(ms) + ' ago'; }

  function fmtUS(us) {
    if (!us) return '–';
    if (us < 1000) return us.toFixed(us < 10 ? 1 : 0) + ' µs';
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + ' ms';
    return (us / 1e6).toFixed(2) + ' s';
  }

  function fmtNum(n) { return Number(n).toLocaleString('en-US'); }

  function badge(text, cls) { return h('span', { class: 'badge ' + cls }, text); }

  function stateBadge(state, answered) {
    if (state === 'up' && answered === false) return badge('not answering', 'warn');
    return badge(state, state);
  }

  function setStatus(ok, text) {
    const e = $('status');
    e.textContent = text;
    e.classList.toggle('lost', !ok);
  }

  // ---- the ring

  function angle(pos) { return pos * 2 * Math.PI; }
  function at(pos, r) {
    const a = angle(pos);
    return [CX + r * Math.sin(a), CY - r * Math.cos(a)];
  }

  function arcPath(from, to, r) {
    let span = to - from;
    if (span <= 0) span += 1;
    const [x0, y0] = at(from, r);
    const [x1, y1] = at(to, r);
    return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 ${span > 0.5 ? 1 : 0} 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
  }

  function buildRing(ring) {
    const svg = $('ring');
    svg.replaceChildren();
    svg.append(s('circle', { class: 'base', cx: CX, cy: CY, r: R }));
    const marks = [[0, '0'], [0.25, '¼'], [0.5, '½'], [0.75, '¾']];
    for (const [p, label] of marks) {
      const [x0, y0] = at(p, R - 22);
      const [x1, y1] = at(p, R - 12);
      svg.append(s('line', { class: 'tick', x1: x0, y1: y0, x2: x1, y2: y1 }));
      const [tx, ty] = at(p, R - 36);
      svg.append(s('text', { x: tx, y: ty + 4, 'text-anchor': 'middle' }, label));
    }
    const nodes = ring.nodes;
    const arcs = s('g', { id: 'arcs' });
    nodes.forEach((n, i) => {
      const prev = nodes[(i + nodes.length - 1) % nodes.length];
      const attrs = { class: 'arc', stroke: colour(n.server), 'data-server': n.server };
      if (nodes.length === 1) {
        arcs.append(s('circle', Object.assign(attrs, { cx: CX, cy: CY, r: R })));
      } else {
        arcs.append(s('path', Object.assign(attrs, { d: arcPath(prev.pos, n.pos, R) })));
      }
    });
    svg.append(arcs);
    const radius = Math.max(2.5, Math.min(8, (Math.PI * R) / Math.max(1, nodes.length) / 1.5));
    const g = s('g', { id: 'vnodes' });
    nodes.forEach((n, i) => {
      const [x, y] = at(n.pos, R);
      const srv = ring.servers[n.server];
      const c = s('circle', {
        class: 'vnode', cx: x.toFixed(2), cy: y.toFixed(2), r: radius, fill: colour(n.server),
        'data-server': n.server, 'data-index': i, 'data-hash': n.hash,
      }, s('title', {}, `${srv.addr} node ${n.id}\n${n.hash}`));
      c.addEventListener('mouseenter', () => showNode(i));
      g.append(c);
    });
    svg.append(g);
    svg.append(s('g', { id: 'keymark' }));
    svg.append(s('text', { class: 'centre', x: CX, y: CY - 6, 'text-anchor': 'middle' },
      `${ring.servers.length} servers · ${nodes.length} nodes`));
    svg.append(s('text', { x: CX, y: CY + 14, 'text-anchor': 'middle', id: 'centre-n' }, ''));
  }

  function showNode(i) {
    const ring = st.ring;
    if (!ring || !ring.nodes[i]) return;
    const n = ring.nodes[i];
    const srv = ring.servers[n.server];
    const e = $('hover');
    e.replaceChildren(
      h('span', { class: 'swatch' }), ' ',
      h('b', {}, srv.addr), ` node ${n.id} of ${srv.count} (${srv.state}) at ${(n.pos * 100).toFixed(3)}% of the circle`,
      h('br'), h('span', { class: 'mono' }, 'SHA-1 ' + n.hash));
    e.firstChild.style.background = colour(n.server);
  }

  function renderRing(ring) {
    st.ring = ring;
    $('self').textContent = ring.self;
    document.title = 'dkvs console · ' + ring.self;
    if (!st.nSet) {
      $('key-n').value = ring.n;
      st.nSet = true;
    }
    const sig = ring.servers.map((x) => x.addr + '/' + x.count).join(' ') + '#' + ring.nodes.length;
    if (sig !== st.ringSig) {
      buildRing(ring);
      st.ringSig = sig;
    }
    const down = new Set();
    ring.servers.forEach((x, i) => { if (x.state !== 'up') down.add(i); });
    for (const c of document.querySelectorAll('#ring .vnode, #ring .arc')) {
      c.classList.toggle('down', down.has(Number(c.dataset.server)));
    }
    $('centre-n').textContent = `N = ${st.key !== null ? st.n : ring.n}`;
    renderLegend(ring);
  }

  function renderLegend(ring) {
    const tb = document.querySelector('#legend tbody');
    tb.replaceChildren(...ring.servers.map((x, i) => {
      const sw = h('span', { class: 'swatch' });
      sw.style.background = colour(i);
      return h('tr', { class: x.state, dataset: { addr: x.addr, server: String(i) } },
        h('td', {}, sw),
        h('td', { class: 'mono' }, x.addr, x.self ? ' (this server)' : ''),
        h('td', {}, badge(x.state, x.state), x.storage ? ' ' : '', x.storage ? badge('storage ' + x.storage, 'warn') : null),
        h('td', {}, x.count),
        h('td', {}, (x.share * 100).toFixed(1) + '%'));
    }));
    markHomes();
  }

  // The key looked up, drawn on the ring and in its table.
  let lastKey = null;

  function renderKey(k) {
    lastKey = k;
    const g = $('keymark');
    if (g) {
      const [x0, y0] = at(k.pos, R - 50);
      const [x1, y1] = at(k.pos, R + 30);
      const [lx, ly] = at(k.pos, R + 48);
      const label = k.key.length > 24 ? k.key.slice(0, 23) + '…' : k.key;
      g.replaceChildren(
        s('line', { class: 'keyline', x1: CX, y1: CY, x2: x1, y2: y1 }),
        s('circle', { class: 'keymark', cx: x0, cy: y0, r: 4 }),
        s('circle', { class: 'keymark', cx: x1, cy: y1, r: 5 }),
        s('text', { class: 'keylabel', x: lx, y: ly + 4, 'text-anchor': Math.sin(angle(k.pos)) >= 0 ? 'start' : 'end' }, label));
    }
    markHomes();
    const box = $('key-result');
    box.hidden = false;
    let verdict;
    if (k.agree) verdict = badge('copies agree', 'ok');
    else if (k.replicas.some((r) => !r.answered)) verdict = badge('some homes did not answer', 'warn');
    else verdict = badge('copies differ', 'differ');
    const rows = k.replicas.map((r, i) => {
      const sw = h('span', { class: 'swatch' });
      sw.style.background = colour(r.server);
      let what;
      if (!r.answered) what = r.error === 'down' ? 'not asked: down' : 'no answer: ' + (r.error || '');
      else if (!r.found) what = 'not found';
      else {
        what = h('span', {}, h('span', { class: 'mono' }, r.version), r.tombstone ? ' (deleted)' : '',
          r.newest ? '' : ' ', r.newest ? '' : badge('stale', 'differ'));
      }
      const when = r.found ? new Date(r.wall_ms).toISOString().slice(11, 23) : '';
      return h('tr', { class: 'replica', dataset: { addr: r.addr } },
        h('td', {}, i + 1),
        h('td', { class: 'mono' }, sw, ' ', r.addr),
        h('td', {}, badge(r.state, r.state), r.storage ? ' ' : '', r.storage ? badge('storage ' + r.storage, 'warn') : null),
        h('td', { class: 'what' }, what),
        h('td', { class: 'mono' }, when));
    });
    box.replaceChildren(
      h('h3', {}, 'Key ', h('span', { class: 'mono' }, JSON.stringify(k.key)), ' ', verdict),
      h('div', { class: 'mono' }, `SHA-1 ${k.hash} · ${(k.pos * 100).toFixed(3)}% of the circle · ${k.n} homes`),
      h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'home'), h('th', {}, 'state'),
          h('th', {}, 'version'), h('th', {}, 'written (UTC)'))),
        h('tbody', {}, ...rows)));
  }

  // markHomes highlights the key's homes on the circle and in the legend.
  function markHomes() {
    const homes = new Set(st.key !== null && lastKey ? lastKey.replicas.map((r) => r.server) : []);
    const first = st.key !== null && lastKey ? lastKey.node : -1;
    for (const c of document.querySelectorAll('#ring .vnode')) {
      c.classList.toggle('home', homes.has(Number(c.dataset.server)));
      c.classList.toggle('first', Number(c.dataset.index) === first);
    }
    for (const tr of document.querySelectorAll('#legend tbody tr')) {
      tr.classList.toggle('home', homes.has(Number(tr.dataset.server)));
    }
  }

  function clearKey() {
    st.key = null;
    lastKey = null;
    $('key-result').hidden = true;
    const g = $('keymark');
    if (g) g.replaceChildren();
    markHomes();
  }

  // ---- the servers

  // spark draws one value a second on a one-minute axis, the newest at
  // the right; with skipZero a 0 (no request that second) is a gap.
  function spark(values, skipZero) {
    const W = 120, H = 24, SECONDS = 60;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
    if (!values || values.length === 0) return svg;
    values = values.slice(-SECONDS);
    const max = Math.max(...values) || 1;
    const step = W / (SECONDS - 1);
    const x0 = W - (values.length - 1) * step;
    let pts = [];
    const flush = () => {
      if (pts.length) svg.append(s('polyline', { points: pts.join(' ') }));
      pts = [];
    };
    values.forEach((v, i) => {
      if (skipZero && !v) { flush(); return; }
      pts.push(`${(x0 + i * step).toFixed(1)},${(H - 1 - (v / max) * (H - 3)).toFixed(1)}`);
    });
    flush();
    return svg;
  }

  function plural(n, one, many) { return `${fmtNum(n)} ${n === 1 ? one : many}`; }

  // known tells what the other servers say of addr: hints they hold for
  // it and when anti-entropy last completed with it.
  function known(v, addr) {
    let hints = 0, ae = 0;
    const holders = [];
    for (const o of v.servers) {
      if (o.addr === addr || !o.stats) continue;
      for (const p of o.stats.peers || []) {
        if (p.addr !== addr) continue;
        if (p.hints_held > 0) {
          hints += p.hints_held;
          holders.push(o.addr);
        }
        ae = Math.max(ae, p.ae_last_ms || 0);
      }
    }
    return { hints, holders, ae };
  }

  function card(sv, i, v) {
    const now = v.time_ms;
    const x = sv.stats;
    const down = sv.state !== 'up';
    const cls = ['card'];
    if (down) cls.push('down');
    if (!sv.answered) cls.push('stale');
    const sw = h('span', { class: 'swatch' });
    sw.style.background = colour(i);
    const c = h('div', { class: cls.join(' '), dataset: { addr: sv.addr, state: sv.state, answered: String(sv.answered) } },
      h('h2', {}, sw, h('span', { class: 'mono' }, sv.addr), sv.self ? h('span', { class: 'self' }, 'this server') : null,
        h('span', { class: 'state' }, stateBadge(sv.state, sv.answered))));
    c.style.borderLeftColor = colour(i);
    if (!sv.answered) {
      let why = sv.state === 'down' ? 'down' : 'no answer';
      if (sv.error) why += ': ' + sv.error;
      c.append(h('div', { class: 'asof' }, x ? `${why}; its figures as of ${fmtAgo(sv.stats_age_ms)}` : `${why}; not heard from since this console started`));
      const k = known(v, sv.addr);
      c.append(h('dl', { class: 'others' },
        h('dt', {}, 'hints for it'), h('dd', { class: 'hints-for-it' },
          k.hints ? `${fmtNum(k.hints)} held by ${k.holders.join(', ')}` : 'none held by the others'),
        h('dt', {}, 'anti-entropy'), h('dd', {}, k.ae ? `last completed with it ${fmtAgo(now - k.ae)}` : 'never completed with it')));
    }
    if (!x) return c;
    const hintsFor = (x.peers || []).filter((p) => p.hints_held > 0)
      .map((p) => `${fmtNum(p.hints_held)} for ${p.addr}`).join(', ');
    c.append(h('dl', {},
      h('dt', {}, 'keys'), h('dd', { class: 'keys' }, fmtNum(x.live_keys)),
      h('dt', {}, 'tombstones'), h('dd', { class: 'tombstones' }, fmtNum(x.tombstones)),
      h('dt', {}, 'stored'), h('dd', {}, fmtBytes(x.live_bytes), ` (${x.engine}${x.synced ? ', synced' : ''})`),
      h('dt', {}, 'uptime'), h('dd', {}, fmtDur(x.uptime_ms)),
      h('dt', {}, 'storage'), h('dd', { class: 'storage', dataset: { storage: x.storage || 'ok' } },
        x.storage && x.storage !== 'ok' ? badge(x.storage, 'warn') : (x.storage || 'ok'),
        x.storage_error ? ` ${x.storage_error}` : '',
        x.disk_total_bytes ? ` (${fmtBytes(x.disk_free_bytes)} free of ${fmtBytes(x.disk_total_bytes)})` : '',
        x.quarantined_keys ? `, ${plural(x.quarantined_keys, 'corrupt record', 'corrupt records')} waiting for repair` : ''),
      h('dt', {}, 'hints held'), h('dd', { class: 'hints' }, fmtNum(x.hints_held), hintsFor ? ` (${hintsFor})` : ''),
      h('dt', {}, 'delivered'), h('dd', {}, `${plural(x.hints_delivered, 'hint', 'hints')}, ${plural(x.read_repairs, 'read repair', 'read repairs')}`),
      h('dt', {}, 'anti-entropy'), h('dd', {}, `${plural(x.ae_rounds, 'round', 'rounds')}, ${plural(x.tombstones_purged, 'tombstone', 'tombstones')} purged`)));
    const t = x.traffic;
    if (t && t.per_second) {
      c.append(h('div', { class: 'spark' },
        h('span', { class: 'label' }, 'requests'), h('span', {}, `${t.rate.toFixed(1)}/s`), spark(t.per_second, false),
        h('span', { class: 'label' }, 'p50'), h('span', {}, fmtUS(t.p50_us)), spark(t.p50_us_per_second, true),
        h('span', { class: 'label' }, 'p99'), h('span', {}, fmtUS(t.p99_us)), spark(t.p99_us_per_second, true)));
    } else {
      c.append(h('div', { class: 'asof' }, 'no request figures (served without --metrics)'));
    }
    if (x.peers && x.peers.length) {
      const base = now - (sv.stats_age_ms > 0 ? sv.stats_age_ms : 0);
      c.append(h('table', { class: 'peers' },
        h('thead', {}, h('tr', {}, h('th', {}, 'peer'), h('th', {}, 'sees it'), h('th', {}, 'hints for it'), h('th', {}, 'last anti-entropy'))),
        h('tbody', {}, ...x.peers.map((p) => h('tr', {},
          h('td', { class: 'mono' }, p.addr),
          h('td', {}, p.up ? (p.storage ? `up, storage ${p.storage}` : 'up') : 'down'),
          h('td', {}, fmtNum(p.hints_held)),
          h('td', {}, p.ae_last_ms ? fmtAgo(base - p.ae_last_ms) : 'never'))))));
    }
    return c;
  }

  function renderServers(v) {
    $('self').textContent = v.self;
    document.title = 'dkvs console · ' + v.self;
    $('cards').replaceChildren(...v.servers.map((sv, i) => card(sv, i, v)));
  }

  // ---- the moves

  function servers(list) { return list.length ? list.join(', ') : 'none'; }

  function fmtRate(bps, kps) {
    if (!bps && !kps) return 'none in the last seconds';
    return `${fmtBytes(bps)}/s, ${fmtNum(Math.round(kps))} keys/s`;
  }

  function moveWhat(m) {
    let w = `${m.kind} of ${m.server}`;
    if (m.new) w += ` by ${m.new}`;
    return w;
  }

  // receiver draws one receiving server: a bar for its stream's current
  // pass, its figures, and its ranges (folded).
  function receiver(r, n) {
    const x = r.stream;
    const down = r.state === 'down';
    const done = r.reported || (x && x.phase === 'done');
    const phase = done ? 'done' : (x ? x.phase : (r.answered ? 'not begun' : 'unknown'));
    const frac = done ? 1 : (x ? x.fraction : 0);
    const c = h('div', { class: 'receiver' + (down ? ' down' : ''),
      dataset: { addr: r.addr, phase, fraction: String(frac), keys: String(x ? x.keys : 0) } },
      h('h3', {}, h('span', { class: 'mono' }, r.addr), stateBadge(r.state, r.answered),
        r.reported ? badge('reported', 'ok') : null));
    const fill = h('div', { class: 'fill' });
    fill.style.width = (100 * Math.max(0, Math.min(1, frac))).toFixed(1) + '%';
    let label = `${phase} ${(100 * frac).toFixed(0)}%`;
    if (x && x.ranges_total) label += ` · ${x.ranges_done}/${x.ranges_total} ranges`;
    c.append(h('div', { class: 'bar' + (done ? ' done' : ''), role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
      'aria-valuenow': Math.round(100 * frac), 'aria-label': r.addr + ' ' + phase }, fill, h('span', { class: 'label' }, label)));
    if (!r.answered) {
      let why = down ? 'down' : 'no answer';
      if (r.error) why += ': ' + r.error;
      c.append(h('div', { class: 'asof' }, x ? `${why}; as of ${fmtAgo(r.stats_age_ms)}` : why));
    }
    const dl = h('dl', {});
    if (x) {
      dl.append(
        h('dt', {}, 'received'), h('dd', { class: 'received' }, `${plural(x.keys, 'key', 'keys')}, ${fmtBytes(x.bytes)}`),
        h('dt', {}, 'rate'), h('dd', { class: 'rate' }, done ? '–' : fmtRate(x.bytes_per_sec, x.keys_per_sec)),
        h('dt', {}, 'sources'), h('dd', {}, `${(x.done || []).length} of ${(x.sources || []).length} done in this pass`));
    }
    dl.append(h('dt', {}, 'time left'), h('dd', { class: 'left' }, r.time_left));
    c.append(dl);
    if (x && x.error && !done) c.append(h('div', { class: 'error' }, 'last attempt failed (it tries again): ' + x.error));
    const pct = (p) => (100 * p).toFixed(1) + '%';
    c.append(h('details', {},
      h('summary', {}, `gains ${plural(r.ranges.length, 'range', 'ranges')}, ${pct(r.share)} of the key space (N=${n})`),
      h('ul', { class: 'ranges' }, ...r.ranges.map((g) =>
        h('li', { class: 'mono' }, `(${pct(g.start_pos)}, ${pct(g.end_pos)}] from ${servers(g.from)}`)))));
    return c;
  }

  function renderMoves(v) {
    $('self').textContent = v.self;
    document.title = 'dkvs console · ' + v.self;
    const box = $('move');
    const m = v.move;
    const now = v.time_ms;
    if (!m) {
      box.className = 'move idle';
      box.dataset.move = '';
      const kids = [h('h2', {}, `No move under way`), h('div', {}, `Ring epoch ${v.epoch}.`)];
      if (v.cleanup) {
        kids.push(h('div', { class: 'cleanup' }, `The old homes of the last move (epoch ${v.cleanup.epoch}) drop what they ` +
          `no longer own once their cleanup grace has passed; the move ended ${fmtAgo(now - v.cleanup.since_ms)}.`));
      }
      box.replaceChildren(...kids);
    } else {
      box.className = 'move';
      box.dataset.move = String(m.id);
      const reads = m.phase === 'read-new' ? 'reads go to the new ring' : 'reads go to the current ring';
      box.replaceChildren(
        h('h2', {}, `Move ${m.id}: ${moveWhat(m)}`, badge(m.phase, 'warn')),
        h('div', { class: 'what' }, `Ring epoch ${v.epoch}; began ${fmtAgo(m.elapsed_ms)}; in: ${servers(m.in)}; out: ${servers(m.out)}; ` +
          `writes go to both rings, ${reads}. ${m.reported.length} of ${m.reported.length + m.waiting.length} servers ` +
          `of the new ring reported their ranges streamed and verified.`),
        m.receivers.length ? h('div', { class: 'receivers' }, ...m.receivers.map((r) => receiver(r, v.n)))
          : h('div', { class: 'what' }, 'No server gains ranges of keys with N homes.'));
    }
    const tb = document.querySelector('#history tbody');
    if (!v.history.length) {
      tb.replaceChildren(h('tr', {}, h('td', { class: 'none', colspan: 8 }, 'none seen since this server started')));
      return;
    }
    tb.replaceChildren(...v.history.map((p) => {
      const cls = p.outcome === 'finished' ? 'ok' : (p.outcome === 'aborted' ? 'differ' : 'warn');
      const known = p.receivers.filter((r) => r.known).map((r) => r.addr);
      const sum = (x) => (p.complete ? '' : '≥ ') + x;
      return h('tr', { dataset: { id: String(p.id), outcome: p.outcome } },
        h('td', {}, p.id),
        h('td', {}, moveWhat(p)),
        h('td', {}, badge(p.outcome, cls), p.cleaning ? ' cleaning up' : ''),
        h('td', {}, fmtAgo(now - p.started_ms)),
        h('td', {}, fmtDur(p.duration_ms)),
        h('td', { class: 'keys' }, sum(fmtNum(p.keys))),
        h('td', {}, sum(fmtBytes(p.bytes))),
        h('td', { class: 'mono' }, p.receivers.length ? `${servers(known)}${known.length < p.receivers.length ? ` (${p.receivers.length - known.length} not telling)` : ''}` : 'none'));
    }));
  }

  // ---- refreshing

  async function refresh() {
    if (st.view === 'ring') {
      const ring = await getJSON('api/ring');
      renderRing(ring);
      if (st.key !== null) {
        const want = st.key;
        const k = await getJSON(`api/key?k=${encodeURIComponent(want)}&n=${st.n}`);
        if (st.key === want) renderKey(k);
      }
    } else if (st.view === 'moves') {
      renderMoves(await getJSON('api/moves'));
    } else {
      renderServers(await getJSON('api/servers'));
    }
  }

  async function tick() {
    if (st.running) { st.again = true; return; }
    clearTimeout(st.timer);
    st.timer = null;
    if (document.hidden) return;
    st.running = true;
    try {
      await refresh();
      setStatus(true, 'updated ' + new Date().toLocaleTimeString('en-GB'));
    } catch (e) {
      setStatus(false, 'no answer from this server; retrying');
    } finally {
      st.running = false;
    }
    if (st.again) {
      st.again = false;
      tick();
      return;
    }
    if (!document.hidden) st.timer = setTimeout(tick, POLL_MS);
  }

  function showView() {
    const views = ['ring', 'servers', 'moves'];
    const want = location.hash.slice(1);
    st.view = views.includes(want) ? want : 'ring';
    for (const v of views) {
      $('view-' + v).hidden = st.view !== v;
      $('tab-' + v).classList.toggle('active', st.view === v);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    showView();
    window.addEventListener('hashchange', () => { showView(); tick(); });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) {
        clearTimeout(st.timer);
        st.timer = null;
      } else {
        tick();
      }
    });
    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const k = $('key-input').value;
      if (k === '') { clearKey(); return; }
      const n = parseInt($('key-n').value, 10);
      st.key = k;
      st.n = n >= 1 && n <= 255 ? n : (st.ring ? st.ring.n : 3);
      lastKey = null;
      tick();
    });
    $('key-clear').addEventListener('click', () => { $('key-input').value = ''; clearKey(); });
    tick();
  });
})();
