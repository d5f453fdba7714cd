/**
 * The live status page (http_ui_uri): one self-contained HTML document, no build step and
 * no external assets. Its script polls the same URI with `?format=json` (the status
 * document) twice a second and redraws. When its server stops answering, every figure on the
 * page is stale: the page greys all of them and says since when, and clears that by itself
 * once an answer comes again.
 *
 * Hostnames, addresses, `data` and why a health check fails come from other servers'
 * heartbeats: remote input. The script builds every node with createElement and sets text
 * with textContent (never innerHTML), and takes CSS classes only from fixed lists. The
 * Content-Security-Policy allows exactly this script and this style (by hash) and requests to
 * this origin, so even a mistake there could not load or run anything else.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root{--bg:#f5f6f8;--panel:#fff;--ink:#1c2430;--muted:#667085;--line:#e4e7ec;--head:#111827;--head-ink:#f9fafb;
--master:#3538cd;--master-bg:#eef0ff;--slave:#067647;--slave-bg:#e7f8ef;--listening:#b54708;--listening-bg:#fff4e0;
--suspect:#b42318;--suspect-bg:#feeceb;--left:#667085;--left-bg:#f0f1f3}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--panel:#171d24;--ink:#e6e9ee;--muted:#98a2b3;--line:#27303a;--head:#0a0e12;
--master:#a4a9ff;--master-bg:#25285a;--slave:#6ce0a4;--slave-bg:#133a29;--listening:#fdb022;--listening-bg:#3d2a0c;
--suspect:#ff8a80;--suspect-bg:#4a1d1a;--left:#98a2b3;--left-bg:#262c33}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:var(--head);color:var(--head-ink);padding:14px 28px;display:flex;align-items:center;gap:16px;flex-wrap:wrap}
header h1{font-size:16px;font-weight:600;margin:0;letter-spacing:.2px}
header .cluster{color:#9aa4b2;font-weight:400}
.conn{margin-left:auto;font-size:13px;color:#cbd2dc;display:flex;align-items:center;gap:8px}
.dot{width:9px;height:9px;border-radius:50%;background:#32d583;box-shadow:0 0 0 3px rgba(50,213,131,.2)}
.conn.down .dot{background:#f97066;box-shadow:0 0 0 3px rgba(249,112,102,.25)}
main{max-width:1240px;margin:0 auto;padding:24px 28px 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:16px;margin-bottom:24px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:16px 18px}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.6px;color:var(--muted);margin-bottom:6px}
.card .value{font-size:22px;font-weight:600;word-break:break-all}
.card .sub{color:var(--muted);font-size:13px;margin-top:2px}
.card.alert{border-color:var(--suspect);background:var(--suspect-bg)}
.card.alert .value{color:var(--suspect)}
section.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;margin-bottom:24px;overflow:hidden}
section.panel h2{font-size:14px;font-weight:600;margin:0;padding:14px 18px;border-bottom:1px solid var(--line)}
section.panel h2 .count{color:var(--muted);font-weight:400;margin-left:6px}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:9px 18px;border-bottom:1px solid var(--line);white-space:nowrap}
th{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.5px;background:var(--bg)}
tr:last-child td{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.host{font-weight:600}
td.data{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;color:var(--muted);max-width:260px;overflow:hidden;text-overflow:ellipsis}
.why{font-size:12px;color:var(--muted);margin-left:8px;font-weight:400}
td.bad{color:var(--suspect);font-weight:600}
tr.gone td{color:var(--left)}
tr.gone td.host{text-decoration:line-through}
.you{font-size:11px;font-weight:500;color:var(--muted);border:1px solid var(--line);border-radius:4px;padding:0 5px;margin-left:6px}
.pill{display:inline-block;font-size:12px;font-weight:600;padding:2px 10px;border-radius:999px}
.pill.master{color:var(--master);background:var(--master-bg)}
.pill.slave{color:var(--slave);background:var(--slave-bg)}
.pill.listening{color:var(--listening);background:var(--listening-bg)}
.pill.suspect{color:var(--suspect);background:var(--suspect-bg)}
.pill.left{color:var(--left);background:var(--left-bg)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:24px}
.grid2 section.panel{margin-bottom:24px}
.empty{padding:14px 18px;color:var(--muted)}
footer{max-width:1240px;margin:0 auto;padding:0 28px 28px;color:var(--muted);font-size:12px}
.stale-banner{background:var(--suspect-bg);color:var(--suspect);border-bottom:2px solid var(--suspect);padding:12px 28px;font-weight:600;font-size:15px}
.stale-banner .since{font-weight:400}
body.stale main,body.stale footer{filter:grayscale(1);opacity:.4}
`;

const SCRIPT = `
(function () {
  'use strict';
  var POLL_MS = 500;
  var STATES = ['master', 'slave', 'listening', 'suspect', 'left'];
  var url = location.pathname + '?format=json';
  var last = null, lastAt = 0, failures = 0;
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function byId(id) { return document.getElementById(id); }
  function str(v) { return typeof v === 'string' ? v : ''; }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : 0; }
  function stateOf(v) { return STATES.indexOf(v) >= 0 ? v : 'listening'; }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
  function seconds(ms) {
    var s = ms / 1000;
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    var units = ['KB', 'MB', 'GB', 'TB'], i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1) + ' ' + units[i];
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function text(id, value) { byId(id).textContent = String(value); }
  function pill(state) { return el('span', 'pill ' + stateOf(state), stateOf(state)); }
  function dataText(value) {
    var s;
    try { s = JSON.stringify(value); } catch (e) { s = ''; }
    return s === undefined || s === '{}' ? '' : s;
  }
  function cell(row, value, cls) { var td = el('td', cls || '', value); row.appendChild(td); return td; }
  // As the status CLI writes it (src/cli.ts healthText): failures in a row / fall while failing.
  function healthText(h) {
    if (!h || typeof h !== 'object') return '';
    var f = num(h.failures), p = num(h.passes);
    if (h.state === 'passing') return f > 0 ? 'passing (' + f + '/' + num(h.fall) + ' failed)' : 'passing';
    if (h.state !== 'failing') return 'starting';
    if (p > 0) return 'failing, ' + p + '/' + num(h.rise) + ' passed';
    return f > 0 ? 'failing ' + f + '/' + num(h.fall) : 'failing';
  }

  function render(doc) {
    var stats = doc.stats && typeof doc.stats === 'object' ? doc.stats : {};
    var servers = doc.servers && typeof doc.servers === 'object' ? doc.servers : {};
    var view = Array.isArray(doc.view) ? doc.view : [];
    var departed = Array.isArray(doc.departed) ? doc.departed : [];
    var now = num(doc.generatedAt);
    var tickMs = num(doc.tickMs), beats = num(doc.checkBeats);

    text('cluster-id', str(doc.clusterId) ? 'cluster "' + str(doc.clusterId) + '"' : 'default cluster');
    document.title = (str(doc.masterHostname) ? str(doc.masterHostname) + ' is master' : 'no master') + ' \\u00b7 pixl-server-multi';

    var master = str(doc.masterHostname);
    text('master-name', master || 'none');
    text('master-term', master ? 'term ' + num(doc.term) : 'no agreed master known to ' + str(doc.hostname));
    byId('master-card').className = master ? 'card' : 'card alert';

    // The card and the table's heading count the same things: servers present, and those that left.
    var live = view.filter(function (s) { return s.state !== 'left'; }).length;
    var gone = departed.length + (view.length - live);
    var members = Array.isArray(doc.members) ? doc.members.length : 0;
    text('members-count', plural(live, 'server'));
    text('members-sub', members + ' eligible' + (gone ? ' \\u00b7 ' + gone + ' left recently' : ''));

    var failovers = num(stats.failovers), last = doc.lastFailover && typeof doc.lastFailover === 'object' ? doc.lastFailover : null;
    text('failover-when', last ? seconds(Math.max(0, now - num(last.at))) + ' ago' : 'none');
    text('failover-sub', last ? str(last.from) + ' \\u2192 ' + str(last.to) + ' in ' + seconds(num(last.ms)) + ' \\u00b7 ' + failovers + ' in total'
      : 'seen since this server started');

    text('self-state', stateOf(doc.state));
    var self = view.filter(function (s) { return s.self; })[0];
    text('self-sub', str(doc.hostname) + (self ? ' \\u00b7 up ' + seconds(num(self.uptime) * 1000) : ''));
    var health = doc.health && typeof doc.health === 'object' ? doc.health : null;
    var healthCard = byId('health-card');
    healthCard.hidden = !health;
    if (health) {
      var lastCheck = health.last && typeof health.last === 'object' ? health.last : null;
      text('health-state', health.state === 'failing' ? 'failing' : health.state === 'passing' ? 'passing' : 'starting');
      text('health-sub', (health.state === 'failing' ? num(health.failures) + ' failed in a row, not eligible' + (lastCheck && str(lastCheck.error) ? ': ' + str(lastCheck.error) : '') + ' \\u00b7 eligible after ' + num(health.rise) + ' passes'
        : num(health.passes) + ' passed in a row \\u00b7 fails after ' + num(health.fall)) + ' \\u00b7 every ' + seconds(num(health.interval) * 1000) + (lastCheck ? ' \\u00b7 last ' + seconds(Math.max(0, now - num(lastCheck.at))) + ' ago' : ''));
      healthCard.className = health.state === 'failing' ? 'card alert' : 'card';
    }

    var body = byId('servers-body');
    clear(body);
    view.forEach(function (s) {
      var row = el('tr', s.state === 'left' ? 'gone' : '');
      var host = cell(row, str(s.hostname), 'host');
      if (s.self) host.appendChild(el('span', 'you', 'this server'));
      cell(row, str(s.ip));
      row.appendChild(el('td')).appendChild(pill(s.state));
      cell(row, s.eligible ? 'yes' : 'no');
      var rowHealth = s.health && typeof s.health === 'object' ? s.health : null;
      var failing = !!rowHealth && rowHealth.state === 'failing';
      var hc = cell(row, healthText(rowHealth), failing ? 'bad' : '');
      var why = rowHealth ? str(rowHealth.error) : '';
      if (why) {
        if (failing) hc.appendChild(el('span', 'why', why.length > 60 ? why.slice(0, 57) + '...' : why));
        hc.title = why.slice(0, 400);
      }
      cell(row, num(s.priority), 'num');
      cell(row, num(s.term), 'num');
      cell(row, s.self ? '\\u2014' : seconds(num(s.lastHeardMs)) + ' ago', 'num');
      cell(row, seconds(num(s.uptime) * 1000), 'num');
      var record = Object.prototype.hasOwnProperty.call(servers, s.hostname) ? servers[s.hostname] : null;
      var data = dataText(record && record.data);
      var td = cell(row, data.length > 120 ? data.slice(0, 117) + '...' : data, 'data');
      td.title = data.slice(0, 4000);
      body.appendChild(row);
    });
    departed.forEach(function (d) {
      var row = el('tr', 'gone');
      cell(row, str(d.hostname), 'host');
      cell(row, str(d.ip));
      var state = row.appendChild(el('td'));
      state.appendChild(pill('left'));
      state.appendChild(el('span', 'why', d.reason === 'shutdown' ? 'shut down' : 'went silent'));
      cell(row, '\\u2014');
      cell(row, '');
      cell(row, '', 'num');
      cell(row, '', 'num');
      cell(row, seconds(Math.max(0, now - num(d.lastHeardAt))) + ' ago', 'num');
      cell(row, '', 'num');
      var data = dataText(d.data);
      var td = cell(row, data.length > 120 ? data.slice(0, 117) + '...' : data, 'data');
      td.title = data.slice(0, 4000);
      body.appendChild(row);
    });
    text('servers-count', plural(live, 'server') + (gone ? ' \\u00b7 ' + gone + ' left' : ''));

    var traffic = [
      ['Packets received', num(stats.packetsIn)], ['Packets sent', num(stats.packetsOut)],
      ['Bytes received', bytes(num(stats.bytesIn))], ['Bytes sent', bytes(num(stats.bytesOut))],
      ['Times elected master', num(stats.elections)], ['Handoffs completed', num(stats.handoffs)],
      ['Send errors', num(stats.sendErrors)], ['Packets under an old key', num(stats.oldKeyPackets)]
    ];
    var tbody = byId('traffic-body');
    clear(tbody);
    traffic.forEach(function (pair) {
      var row = el('tr');
      cell(row, pair[0]);
      cell(row, pair[1], 'num');
      tbody.appendChild(row);
    });

    var dropped = stats.dropped && typeof stats.dropped === 'object' ? stats.dropped : {};
    var reasons = Object.keys(dropped).filter(function (k) { return num(dropped[k]) > 0; }).sort();
    var dbody = byId('drops-body');
    clear(dbody);
    var total = 0;
    reasons.forEach(function (reason) {
      var row = el('tr');
      cell(row, reason);
      cell(row, num(dropped[reason]), 'num');
      total += num(dropped[reason]);
      dbody.appendChild(row);
    });
    byId('drops-empty').hidden = reasons.length > 0;
    text('drops-count', total);

    text('timing', 'heartbeat every ' + seconds(tickMs) + ' \\u00b7 check_beats ' + beats + ' \\u00b7 a silent server is dropped after ' +
      seconds(tickMs * (beats + 0.25)) + ' \\u00b7 page refreshes every ' + seconds(POLL_MS));
  }

  function showConnection() {
    var conn = byId('conn');
    var banner = byId('stale');
    var name = str(last && last.hostname) || location.host;
    if (failures > 0) {
      conn.className = 'conn down';
      text('conn-text', last ? 'connection lost \\u00b7 last update ' + seconds(Date.now() - lastAt) + ' ago' : 'cannot reach the server');
      // Every figure on the page is as old as the last answer: grey them all, and say so.
      document.body.className = 'stale';
      text('stale-what', 'Connection to ' + name + ' lost \\u2014 ' + (last ? 'data as of ' + clock(lastAt) : 'no data yet'));
      text('stale-since', last ? '(' + seconds(Date.now() - lastAt) + ' ago; every figure below is stale; retrying)' : '(retrying)');
      banner.hidden = false;
      document.title = 'connection lost \\u00b7 pixl-server-multi';
    } else {
      conn.className = 'conn';
      text('conn-text', 'live \\u00b7 from ' + name);
      document.body.className = '';
      banner.hidden = true;
    }
  }

  function poll() {
    fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (doc) {
        if (!doc || typeof doc !== 'object') throw new Error('not a status document');
        last = doc; lastAt = Date.now(); failures = 0;
        try { render(doc); } catch (err) { console.error('status page: cannot show this status: ' + err); }
      })
      .catch(function () { failures++; })
      .then(function () { showConnection(); setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`;

const BODY = `
<header>
  <h1>pixl-server-multi <span class="cluster" id="cluster-id"></span></h1>
  <div class="conn" id="conn"><span class="dot"></span><span id="conn-text">connecting</span></div>
</header>
<div class="stale-banner" id="stale" role="alert" hidden><span id="stale-what"></span> <span class="since" id="stale-since"></span></div>
<main>
  <div class="cards">
    <div class="card" id="master-card"><div class="label">Master</div><div class="value" id="master-name">&#8230;</div><div class="sub" id="master-term"></div></div>
    <div class="card"><div class="label">Servers</div><div class="value" id="members-count">&#8230;</div><div class="sub" id="members-sub"></div></div>
    <div class="card"><div class="label">Last failover</div><div class="value" id="failover-when">&#8230;</div><div class="sub" id="failover-sub"></div></div>
    <div class="card"><div class="label">This server</div><div class="value" id="self-state">&#8230;</div><div class="sub" id="self-sub"></div></div>
    <div class="card" id="health-card" hidden><div class="label">Health check</div><div class="value" id="health-state">&#8230;</div><div class="sub" id="health-sub"></div></div>
  </div>
  <section class="panel">
    <h2>Servers<span class="count" id="servers-count"></span></h2>
    <div class="scroll"><table>
      <thead><tr><th>Hostname</th><th>Address</th><th>State</th><th>Eligible</th><th>Health</th><th class="num">Priority</th><th class="num">Term</th><th class="num">Last heard</th><th class="num">Uptime</th><th>Data</th></tr></thead>
      <tbody id="servers-body"></tbody>
    </table></div>
  </section>
  <div class="grid2">
    <section class="panel">
      <h2>Traffic <span class="count">this server</span></h2>
      <table><tbody id="traffic-body"></tbody></table>
    </section>
    <section class="panel">
      <h2>Dropped datagrams<span class="count" id="drops-count"></span></h2>
      <table><tbody id="drops-body"></tbody></table>
      <div class="empty" id="drops-empty">None: every datagram was valid.</div>
    </section>
  </div>
</main>
<footer id="timing"></footer>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

function build(): { html: Buffer; csp: string } {
  const html =
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    '<title>pixl-server-multi</title>\n<link rel="icon" href="data:,">\n' +
    `<style>${STYLE}</style>\n</head>\n<body>${BODY}<script>${SCRIPT}</script>\n</body>\n</html>\n`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html: Buffer.from(html, 'utf8'), csp };
}

/** The page and the policy that goes with it (built once). */
export const statusPage = build();
