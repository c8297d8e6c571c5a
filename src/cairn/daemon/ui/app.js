// The cairn dashboard (docs/dashboard.md): one page, plain JS, no network but this peer's API.
// Every data call carries the API token (Authorization: Bearer, as the CLI sends it), which
// is kept in sessionStorage; the page itself is served without it.
'use strict';

const TOKEN_KEY = 'cairn.token';
const TABS = ['cluster', 'health', 'snapshots', 'sources', 'jobs'];
const READ_BLOCK = 4 << 20;  // GET /v1/read serves at most 4 MiB per call

const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let timer = null;
let browse = null;  // {snapshot, short, path (text), pathB64} while browsing a snapshot

// ---- helpers ----
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function fillBody(table, rows) { $(table + ' tbody').replaceChildren(...rows); }
function size(n) {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
}
function age(ns) {
  if (!ns) return 'never';
  const s = Math.max(0, (Date.now() * 1e6 - ns) / 1e9);
  if (s < 60) return s.toFixed(0) + ' s ago';
  if (s < 3600) return (s / 60).toFixed(0) + ' min ago';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h ago';
  return (s / 86400).toFixed(1) + ' d ago';
}
function when(ns) { return ns ? new Date(ns / 1e6).toLocaleString() : '-'; }
function bar(done, total) {
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
  const s = el('span');
  s.style.width = pct.toFixed(1) + '%';
  return el('span', {class: 'bar', title: pct.toFixed(1) + '%'}, s);
}
// Raw bytes as base64 (path fields: docs/cli.md "Paths that are not UTF-8").
function bytesB64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
function textB64(text) { return bytesB64(new TextEncoder().encode(text)); }
function fieldB64(obj, field) {
  return obj[field + '_base64'] !== undefined ? obj[field + '_base64'] : textB64(obj[field]);
}
function showBanner(text) {
  const b = $('#banner');
  b.textContent = text || '';
  b.hidden = !text;
}

// ---- the API ----
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function api(method, path, body, raw) {
  const init = {method, headers: {'Authorization': 'Bearer ' + token}, cache: 'no-store'};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', 'cannot reach the peer: is `cairn peer` running?');
  }
  if (!res.ok) {
    let code = 'UNKNOWN', message = res.status + ' ' + res.statusText;
    try {
      const j = await res.json();
      if (j.error) { code = j.error.code; message = j.error.message; }
    } catch (e) { /* not JSON */ }
    if (res.status === 401) logout('the token was refused: ' + message);
    throw new ApiError(res.status, code, message);
  }
  return raw ? new Uint8Array(await res.arrayBuffer()) : res.json();
}

// ---- login ----
async function loginWithCode(code) {
  const res = await fetch('/v1/ui/login', {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({code}), cache: 'no-store'});
  const j = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(j.error ? j.error.message : 'login failed: ' + res.status);
  return j.token;
}
function setToken(t) {
  token = t;
  sessionStorage.setItem(TOKEN_KEY, t);
}
function logout(why) {
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer) clearInterval(timer);
  timer = null;
  $('#tabs').hidden = true;
  $('#logout').hidden = true;
  $('#whoami').textContent = '';
  for (const p of document.querySelectorAll('.page')) p.hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = why || '';
}
async function start() {
  try {
    const status = await api('GET', '/v1/status');
    $('#whoami').textContent = 'peer ' + status.peer_id + ' (' + status.host_id + ')';
  } catch (e) {
    if (e.status !== 401) showBanner(e.message);
    return;
  }
  $('#login').hidden = true;
  $('#tabs').hidden = false;
  $('#logout').hidden = false;
  route();
  if (!timer) timer = setInterval(refresh, 1000);
}

// ---- tabs ----
function currentTab() {
  const t = location.hash.replace(/^#/, '');
  return TABS.includes(t) ? t : 'cluster';
}
function route() {
  const tab = currentTab();
  for (const t of TABS) $('#page-' + t).hidden = t !== tab;
  for (const a of document.querySelectorAll('#tabs a')) {
    a.classList.toggle('active', a.dataset.tab === tab);
  }
  refresh();
}
let refreshing = false;
async function refresh() {
  if (!token || refreshing) return;
  refreshing = true;
  try {
    const pages = {cluster: refreshCluster, health: refreshHealth, snapshots: refreshSnapshots,
      sources: refreshSources, jobs: refreshJobs};
    await pages[currentTab()]();
    showBanner('');
  } catch (e) {
    if (token) showBanner(e.message);
  } finally {
    refreshing = false;
  }
}

// ---- cluster ----
async function refreshCluster() {
  const peers = await api('GET', '/v1/peers');
  let skewed = false;
  fillBody('#peers', peers.map((p) => {
    if (p.clock_skewed) skewed = true;
    const clock = p.self || p.clock_offset_seconds === null || p.clock_offset_seconds === undefined
      ? '-' : (p.clock_offset_seconds >= 0 ? '+' : '') + p.clock_offset_seconds.toFixed(1) + ' s' +
        (p.clock_skewed ? ' !' : '');
    return el('tr', {'data-peer': p.peer_id, 'data-state': p.state},
      el('td', {}, p.peer_id + (p.self ? ' *' : '')),
      el('td', {}, p.host_id),
      el('td', {}, p.address),
      el('td', {class: 'state state-' + p.state}, p.state),
      el('td', {}, bar(p.used, p.quota), size(p.used) + ' / ' + size(p.quota)),
      el('td', {}, p.self ? '-' : age(p.last_seen_ns)),
      el('td', {class: p.clock_skewed ? 'bad' : ''}, clock));
  }));
  $('#peers-note').textContent = '* = this peer. ' + (skewed
    ? '! = a clock more than ' + (peers[0] ? peers[0].clock_window_seconds : 300) +
      ' s off: calls between those peers are refused; synchronize the clocks (NTP).' : '');
}

// ---- health ----
let checkJob = null;
function card(k, v, cls) { return el('div', {class: 'card'}, el('div', {class: 'v ' + (cls || '')}, v), el('div', {class: 'k'}, k)); }
async function refreshHealth() {
  const [status, health] = await Promise.all([api('GET', '/v1/status'),
    fetch('/v1/health', {headers: {'Authorization': 'Bearer ' + token}}).then((r) => r.json())]);
  const home = status.home || {};
  const below = home.chunks_below_target || 0;
  const noOffsite = home.chunks_without_offsite || 0;
  const problems = (health.problems || []).map((p) => el('li', {class: 'bad'}, p));
  $('#health-summary').replaceChildren(
    el('div', {class: 'cards'},
      card('ready', health.ready ? 'yes' : 'no', health.ready ? 'good' : 'bad'),
      card('peers alive', (health.peers_alive ?? '-') + ' / ' + (health.peers_known ?? '-')),
      card('snapshots', home.snapshots ?? status.snapshots),
      card('chunks', home.chunks ?? '-'),
      card('at target', home.chunks_at_target ?? '-', 'good'),
      card('below target', below, below > 0 ? 'warn' : 'good'),
      card('without off-site copy', noOffsite, noOffsite > 0 ? 'warn' : 'good'),
      card('stored', size(home.stored_bytes)),
      card('dedup ratio', home.dedup_ratio ? Number(home.dedup_ratio).toFixed(2) : '-'),
      card('index', status.index ? status.index.state : '-')),
    problems.length ? el('ul', {}, ...problems) : '',
    survivalTable(health));
  // The last check (ours or the CLI's): lost chunks and what each snapshot survives.
  const jobs = await api('GET', '/v1/jobs');
  const check = checkJob ? jobs.find((j) => j.id === checkJob) : jobs.find((j) => j.kind === 'check');
  if (!check) { $('#check-state').textContent = 'no check since the peer started'; return; }
  $('#check-state').replaceChildren(el('span', {class: 'state-' + check.state},
    'check ' + check.id.slice(0, 8) + ' ' + check.state), ' (started ' + when(check.started_ns) + ')');
  if (check.state === 'failed') {
    $('#check-result').replaceChildren(el('p', {class: 'error'}, check.error.message));
    return;
  }
  if (check.state !== 'done') return;
  const r = check.result;
  const rows = (r.snapshots || []).map((s) => el('tr', {'data-snapshot': s.id},
    el('td', {}, s.short_id), el('td', {class: 'num'}, s.chunks),
    el('td', {class: 'num good'}, s.at_target),
    el('td', {class: 'num ' + (s.below_target ? 'warn' : '')}, s.below_target),
    el('td', {class: 'num ' + (s.lost ? 'bad' : '')}, s.lost)));
  const notes = [...(r.short_of_peers || []), ...(r.survives || [])].map((x) => el('li', {}, x.message));
  $('#check-result').replaceChildren(
    el('p', {class: r.healthy ? 'good' : (r.lost ? 'bad' : 'warn')},
      r.healthy ? 'healthy: every chunk at its target' :
        r.chunks + ' chunks: ' + r.at_target + ' at target, ' + r.below_target + ' below, ' + r.lost + ' lost'),
    el('table', {}, el('thead', {}, el('tr', {}, ...['Snapshot', 'Chunks', 'At target', 'Below target', 'Lost'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows)),
    notes.length ? el('ul', {}, ...notes) : '');
}
function duration(s) {
  if (s < 60) return Math.max(1, Math.ceil(s)) + ' s';
  if (s < 3600) return (s / 60).toFixed(0) + ' min';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}
// What each snapshot survives now (GET /v1/health "snapshots", computed by the peer in the
// background: docs/dashboard.md "Pages").
function survivalTable(health) {
  const info = health.snapshot_health || {};
  const snaps = (health.snapshots || []).slice().reverse();  // newest first
  const rate = info.rebuild_rate_bytes_per_second;
  const from = {repair: 'the measured repair rate', backup: 'a backup\'s rate (no repair measured yet)',
    restore: 'a restore\'s rate (no repair measured yet)'}[info.rebuild_rate_source] || '';
  const rows = snaps.map((s) => {
    let survives = 'survives any ' + s.survives_peers + (s.survives_peers === 1 ? ' peer' : ' peers');
    let cls = 'good';
    if (s.lost_chunks > 0) { survives = 'chunks lost: ' + s.lost_chunks; cls = 'bad'; }
    else if (s.survives_peers === 0) { survives = 'survives no peer loss'; cls = 'warn'; }
    const hosts = s.single_point_hosts || [];
    let rebuild;
    if (!s.rebuild_bytes) rebuild = 'nothing to rebuild';
    else if (s.rebuild_seconds === null || s.rebuild_seconds === undefined) rebuild = size(s.rebuild_bytes) + ': rate not measured yet';
    else rebuild = size(s.rebuild_bytes) + ' in ~' + duration(s.rebuild_seconds);
    return el('tr', {'data-snapshot': s.id, 'data-survives': s.survives_peers, 'data-lost': s.lost_chunks,
      'data-rate': rate ? info.rebuild_rate_source : 'none'},
      el('td', {title: s.id}, s.short_id), el('td', {}, when(s.time_ns)),
      el('td', {}, (s.paths || []).join(', ')),
      el('td', {class: 'survives ' + cls, title: s.error || ''}, survives + (s.error ? ' (a tree could not be read)' : '')),
      el('td', {class: 'hosts ' + (hosts.length ? 'warn' : '')},
        hosts.length ? hosts.map((h) => 'host ' + h).join(', ') + (hosts.length === 1 ? ' is a single point' : ' are single points') : 'none'),
      el('td', {class: 'rebuild', title: s.rebuild_peer ? 'if peer ' + s.rebuild_peer + ', the most loaded, died' : ''}, rebuild));
  });
  const note = [];
  if (info.computed_at) note.push('computed ' + (info.age_seconds ?? 0) + ' s ago (every 30 s, sooner after a job or a peer change)');
  else note.push('not computed yet');
  if (info.error) note.push('the last computation failed: ' + info.error);
  note.push(rate ? 'rebuild estimates at ' + size(rate) + '/s, ' + from : 'rebuild time: repair rate not measured yet');
  return el('div', {id: 'survival'},
    el('h2', {}, 'What each snapshot survives now'),
    el('table', {}, el('thead', {}, el('tr', {}, ...['Snapshot', 'Time', 'Paths', 'Survives', 'Single-point hosts',
      'Rebuild if the most loaded peer dies'].map((h) => el('th', {}, h)))), el('tbody', {}, ...rows)),
    el('p', {class: 'note'}, note.join('; ')));
}
async function startCheck() {
  try {
    const r = await api('POST', '/v1/check', {});
    checkJob = r.job_id;
    refresh();
  } catch (e) { showBanner(e.message); }
}

// ---- snapshots ----
let snapshotsShown = '';
async function refreshSnapshots() {
  const snaps = await api('GET', '/v1/snapshots');
  const key = JSON.stringify(snaps.map((s) => s.id));
  if (key === snapshotsShown) return;
  snapshotsShown = key;
  fillBody('#snapshots', snaps.slice().reverse().map((s) => el('tr', {'data-snapshot': s.id},
    el('td', {}, el('button', {class: 'link', onclick: () => openDir(s.id, s.short_id, '', '')}, s.short_id)),
    el('td', {}, when(s.time_ns)), el('td', {}, s.hostname),
    el('td', {}, (s.paths || []).join(', ')), el('td', {}, (s.tags || []).join(', ')),
    el('td', {class: 'num'}, s.files), el('td', {class: 'num'}, size(s.bytes)))));
  // The two pickers of "Compare two snapshots", newest first; what the user picked stays picked,
  // else the second newest to the newest.
  const newest = snaps.slice().reverse();
  for (const [sel, dflt] of [['#diff-a', 1], ['#diff-b', 0]]) {
    const picker = $(sel);
    const kept = picker.dataset.picked ? picker.value : '';
    picker.replaceChildren(...newest.map((s) => el('option', {value: s.id},
      s.short_id + '  ' + when(s.time_ns))));
    if (newest.some((s) => s.id === kept)) picker.value = kept;
    else if (newest.length) picker.value = newest[Math.min(dflt, newest.length - 1)].id;
  }
}

// ---- diff (GET /v1/diff, the lines of `cairn diff`: docs/cli.md) ----
function octal(mode) { return (Number(mode) & 0o7777).toString(8).padStart(4, '0'); }
// The path on the backed-up machine (directories end in '/'), else '/' + the path inside the
// snapshots.
function diffPath(c, type) {
  const p = c.source_path !== undefined ? c.source_path : '/' + c.path;
  return type === 'dir' ? p + '/' : p;
}
// [sign, path, what changed] of one change.
function diffLine(c) {
  if (c.change === 'added' || c.change === 'removed') {
    const type = c.change === 'added' ? c.type_after : c.type_before;
    const bytes = c.change === 'added' ? c.size_after : c.size_before;
    return [c.change === 'added' ? '+' : '-', diffPath(c, type), type === 'file' ? size(bytes) : type];
  }
  const what = [];
  if (c.type_changed) what.push(c.type_before + ' -> ' + c.type_after);
  if (c.content_changed && c.type_after === 'file') what.push(size(c.size_before) + ' -> ' + size(c.size_after));
  else if (c.content_changed && c.type_after === 'symlink') what.push('target changed');
  if (c.mode_changed) what.push('mode ' + octal(c.mode_before) + ' -> ' + octal(c.mode_after));
  return ['M', diffPath(c, c.type_after), what.join(', ')];
}
async function showDiff(ev) {
  ev.preventDefault();
  const a = $('#diff-a').value, b = $('#diff-b').value;
  if (!a || !b) { $('#diff-state').textContent = 'no snapshots to compare yet'; return; }
  $('#diff-state').textContent = 'comparing...';
  $('#diff-result').hidden = true;
  let d;
  try {
    d = await api('GET', '/v1/diff?a=' + encodeURIComponent(a) + '&b=' + encodeURIComponent(b));
  } catch (e) { $('#diff-state').textContent = e.message; return; }
  $('#diff-state').textContent = '';
  $('#diff-title').textContent = 'comparing snapshot ' + d.a.short_id + ' (' + when(d.a.time_ns) +
    ') to ' + d.b.short_id + ' (' + when(d.b.time_ns) + '):';
  const changes = d.changes || [];
  const signClass = {'+': 'good', '-': 'bad', 'M': 'warn'};
  fillBody('#diff', changes.length ? changes.map((c) => {
    const [sign, shown, what] = diffLine(c);
    return el('tr', {'data-change': c.change, 'data-path': shown},
      el('td', {class: signClass[sign]}, sign), el('td', {}, shown), el('td', {}, what));
  }) : [el('tr', {}, el('td', {colspan: 3}, 'no changes'))]);
  $('#diff-totals').textContent = d.added + ' added (' + size(d.added_bytes) + '), ' + d.removed +
    ' removed (' + size(d.removed_bytes) + '), ' + d.modified + ' modified';
  $('#diff-result').hidden = false;
}
function baseName(p) { const parts = p.split('/').filter((x) => x); return parts.length ? parts[parts.length - 1] : p; }
async function openDir(snapshot, short, path, pathB64) {
  const entries = await api('GET', '/v1/ls?snapshot=' + encodeURIComponent(snapshot) +
    '&path_base64=' + encodeURIComponent(pathB64));
  browse = {snapshot, short, path, pathB64};
  $('#browser').hidden = false;
  $('#browse-snap').textContent = short;
  $('#browse-path').textContent = '/' + path;
  $('#restore-what').textContent = path ? '/' + path : 'the whole snapshot';
  $('#restore-state').textContent = '';
  fillBody('#entries', entries.map((e) => {
    const b64 = fieldB64(e, 'path');
    const name = baseName(e.path);
    const action = e.type === 'file'
      ? el('button', {class: 'link download', onclick: () => download(snapshot, e, b64)}, 'download')
      : e.type === 'dir' ? el('button', {class: 'link', onclick: () => openDir(snapshot, short, e.path, b64)}, 'open')
        : '';
    return el('tr', {'data-path': e.path, 'data-name': name, 'data-type': e.type},
      el('td', {}, e.type === 'dir'
        ? el('button', {class: 'link', onclick: () => openDir(snapshot, short, e.path, b64)}, name + '/')
        : name + (e.type === 'symlink' ? ' -> ' + e.target : '')),
      el('td', {}, e.type), el('td', {class: 'num'}, e.type === 'file' ? size(e.size) : ''),
      el('td', {}, e.mtime_ns ? when(e.mtime_ns) : ''), el('td', {}, action));
  }));
}
function browseUp() {
  if (!browse || !browse.path) return;
  const parts = browse.path.split('/').filter((x) => x);
  parts.pop();
  const up = parts.join('/');
  openDir(browse.snapshot, browse.short, up, textB64(up));
}
// Reads the file through GET /v1/read in 4 MiB blocks and hands it to the browser as a
// download (the token cannot go on a plain link).
async function download(snapshot, entry, b64) {
  try {
    const blocks = [];
    let offset = 0;
    for (;;) {
      showBanner('');
      const block = await api('GET', '/v1/read?snapshot=' + encodeURIComponent(snapshot) +
        '&path_base64=' + encodeURIComponent(b64) + '&offset=' + offset + '&length=' + READ_BLOCK,
      undefined, true);
      blocks.push(block);
      offset += block.length;
      if (block.length < READ_BLOCK) break;
    }
    const url = URL.createObjectURL(new Blob(blocks, {type: 'application/octet-stream'}));
    const a = el('a', {href: url, download: baseName(entry.path)});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) { showBanner('download failed: ' + e.message); }
}
async function restore(ev) {
  ev.preventDefault();
  const target = $('#restore-target').value.trim();
  if (!target.startsWith('/')) { $('#restore-state').textContent = 'the target must be an absolute directory'; return; }
  try {
    const r = await api('POST', '/v1/restore', {snapshot: browse.snapshot, path_base64: browse.pathB64,
      target_base64: textB64(target)});
    $('#restore-state').replaceChildren('restore job ', el('a', {href: '#jobs', class: 'link'}, r.job_id.slice(0, 8)), ' started');
  } catch (e) { $('#restore-state').textContent = e.message; }
}

// ---- sources ----
let sourcesCache = [];
function lastBackup(s) {
  if (s.running_job) return el('span', {class: 'state-running'}, 'running now');
  const b = s.last_backup;
  if (!b) return 'never';
  if (b.state === 'failed') return el('span', {class: 'state-failed'}, 'failed ' + b.time + ': ' + b.error);
  return b.short_id + ' ' + new Date(b.time).toLocaleString();
}
async function refreshSources() {
  sourcesCache = await api('GET', '/v1/sources');
  fillBody('#sources', sourcesCache.map((s) => el('tr', {'data-source': s.path},
    el('td', {}, s.path),
    el('td', {}, s.ec ? s.ec + ' erasure coded' : s.copies ? s.copies + ' copies' : 'default'),
    el('td', {}, s.schedule || 'none'),
    el('td', {}, !s.watch ? 'no' : s.watching ? s.watches + ' directories' : 'path missing'),
    el('td', {}, lastBackup(s)),
    el('td', {},
      el('button', {onclick: () => backupSource(s, '#sources-note')}, 'Back up now'), ' ',
      el('button', {onclick: () => removeSource(s)}, 'Remove')))));
}
async function addSource(ev) {
  ev.preventDefault();
  const path = $('#source-path').value.trim();
  const body = {path_base64: textB64(path)};
  const copies = $('#source-copies').value.trim();
  if (copies) body.copies = Number(copies);
  const schedule = $('#source-schedule').value.trim();
  if (schedule) body.schedule = schedule;
  try {
    await api('POST', '/v1/sources', body);
    $('#source-state').textContent = '';
    $('#source-path').value = '';
    refresh();
  } catch (e) { $('#source-state').textContent = e.message; }
}
async function removeSource(s) {
  if (!confirm('Stop backing up ' + s.path + '? Its snapshots are kept.')) return;
  try {
    await api('DELETE', '/v1/sources?path_base64=' + encodeURIComponent(fieldB64(s, 'path')));
    refresh();
  } catch (e) { showBanner(e.message); }
}
// A backup of a source with its settings (copies or ec, excludes).
async function backupSource(s, stateSel) {
  const body = {paths_base64: [fieldB64(s, 'path')], excludes: s.excludes || []};
  if (s.ec) body.ec = s.ec; else if (s.copies) body.copies = s.copies;
  try {
    const r = await api('POST', '/v1/backup', body);
    $(stateSel).textContent = 'backup job ' + r.job_id.slice(0, 8) + ' started';
    refresh();
  } catch (e) { $(stateSel).textContent = e.message; }
}

// ---- jobs ----
function progressOf(j) {
  const p = j.progress || {};
  if (p.bytes_total > 0) return [p.bytes_done || 0, p.bytes_total, size(p.bytes_done || 0) + ' / ' + size(p.bytes_total)];
  if (p.files_total > 0) return [p.files_done || 0, p.files_total, (p.files_done || 0) + ' / ' + p.files_total + ' files'];
  if (p.chunks_total > 0) return [p.chunks_done || 0, p.chunks_total, (p.chunks_done || 0) + ' / ' + p.chunks_total + ' chunks'];
  return [j.state === 'running' ? 0 : 1, 1, ''];
}
function resultOf(j) {
  if (j.state === 'failed') return el('span', {class: 'error'}, j.error.message);
  if (j.state !== 'done' || !j.result) return '';
  const r = j.result;
  if (j.kind === 'backup') return 'snapshot ' + r.short_id + ': ' + r.files + ' files, ' + size(r.new_bytes) + ' new';
  if (j.kind === 'restore') return r.files + ' files, ' + size(r.bytes) + ((r.errors || []).length ? ', ' + r.errors.length + ' errors' : '');
  if (j.kind === 'check') return r.healthy ? 'healthy' : r.below_target + ' below target, ' + r.lost + ' lost';
  return '';
}
async function refreshJobs() {
  const [jobs, sources] = await Promise.all([api('GET', '/v1/jobs'), api('GET', '/v1/sources')]);
  sourcesCache = sources;
  const sel = $('#backup-source');
  const want = JSON.stringify(sources.map((s) => s.path));
  if (sel.dataset.paths !== want) {
    sel.dataset.paths = want;
    sel.replaceChildren(...sources.map((s, i) => el('option', {value: i}, s.path)));
  }
  fillBody('#jobs', jobs.map((j) => {
    const [done, total, text] = progressOf(j);
    return el('tr', {'data-job': j.id, 'data-kind': j.kind, 'data-state': j.state},
      el('td', {}, j.id.slice(0, 8)), el('td', {}, j.kind), el('td', {}, when(j.started_ns)),
      el('td', {class: 'state-' + j.state}, j.state),
      el('td', {}, bar(done, total), text), el('td', {}, resultOf(j)),
      el('td', {}, j.state === 'running'
        ? el('button', {onclick: () => api('DELETE', '/v1/jobs/' + j.id).then(refresh, (e) => showBanner(e.message))}, 'Cancel') : ''));
  }));
}
function startBackupFromJobs(ev) {
  ev.preventDefault();
  const s = sourcesCache[Number($('#backup-source').value)];
  if (!s) { $('#backup-state').textContent = 'add a source first (Sources)'; return; }
  backupSource(s, '#backup-state');
}

// ---- start ----
window.addEventListener('hashchange', () => { if (token) route(); });
document.addEventListener('DOMContentLoaded', async () => {
  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('#token').value.trim());
    $('#token').value = '';
    start();
  });
  $('#logout').addEventListener('click', () => logout(''));
  $('#check-start').addEventListener('click', startCheck);
  $('#browse-up').addEventListener('click', browseUp);
  $('#restore-form').addEventListener('submit', restore);
  $('#diff-form').addEventListener('submit', showDiff);
  for (const sel of ['#diff-a', '#diff-b']) {
    $(sel).addEventListener('change', (ev) => { ev.target.dataset.picked = '1'; });
  }
  $('#source-form').addEventListener('submit', addSource);
  $('#backup-form').addEventListener('submit', startBackupFromJobs);
  // A one-time link from `cairn ui`: #code=CODE, exchanged once for the token, then dropped
  // from the address bar.
  const m = location.hash.match(/^#code=([0-9a-fA-F]+)$/);
  if (m) {
    history.replaceState(null, '', location.pathname + '#cluster');
    try {
      setToken(await loginWithCode(m[1]));
    } catch (e) {
      logout(e.message);
      return;
    }
  }
  if (token) start(); else logout('');
});
