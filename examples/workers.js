// Workers splitting queues by key: each queue belongs to exactly one live server
// (rendezvous hashing), and a server joining or leaving moves only its share.
// Three pixl-server processes on loopback, then a fourth joins, then one leaves.
//
//   node examples/workers.js
//
// Everything stays on this machine: broadcast 127.255.255.255 on a free port.
'use strict';
const { fork } = require('child_process');
const dgram = require('dgram');
const os = require('os');
const path = require('path');

const QUEUES = Array.from({ length: 12 }, (_, i) => `queue-${String(i + 1).padStart(2, '0')}`);

if (process.env.WORKER_MEMBER) member();

function member() {
	const PixlServer = require('pixl-server');
	const { hostname, port, logDir } = JSON.parse(process.env.WORKER_MEMBER);
	const server = new PixlServer({
		__name: 'Worker',
		__version: '1.0',
		config: {
			hostname, ip: '127.0.0.1', foreground: true, exit_on_shutdown: true, log_dir: logDir, log_filename: hostname + '.log', debug_level: 5,
			MultiServer: { comm_port: port, heartbeat_freq: 0.1, check_beats: 5, broadcast_ip: '127.255.255.255' }
		},
		components: [ require('pixl-server-multi') ]
	});
	// 'assignment' fires whenever the set of live eligible servers changes.
	server.on('assignment', (members) => {
		const mine = QUEUES.filter((queue) => server.MultiServer.isMasterFor(queue));
		process.send({ hostname, members, mine });
	});
	process.on('disconnect', () => process.exit(0));
	server.startup();
}

async function main() {
	const port = await freePort();
	const logDir = require('fs').mkdtempSync(path.join(os.tmpdir(), 'workers-example-'));
	const children = {};
	const views = {};
	let waiting = null;
	const start = (hostname) => {
		const child = fork(__filename, [], { env: { ...process.env, WORKER_MEMBER: JSON.stringify({ hostname, port, logDir }) } });
		children[hostname] = child;
		child.on('message', (msg) => { views[msg.hostname] = msg; if (waiting) waiting(); });
	};
	// Wait until every running worker sees exactly `expected` as the member list.
	const settle = (expected) => new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error('workers did not agree in 10 s')), 10000);
		waiting = () => {
			const ok = expected.every((h) => views[h] && views[h].members.join() === expected.join());
			if (ok) { clearTimeout(timer); waiting = null; resolve(); }
		};
		waiting();
	});
	const show = (title, hosts, previous) => {
		console.log(title);
		const owner = {};
		for (const h of hosts) for (const q of views[h].mine) owner[q] = h;
		for (const h of hosts) console.log(`  ${h}: ${views[h].mine.join(' ') || '(none)'}`);
		const unowned = QUEUES.filter((q) => !owner[q]);
		const doubled = hosts.reduce((n, h) => n + views[h].mine.length, 0) - Object.keys(owner).length;
		if (unowned.length || doubled) throw new Error(`queues unowned: ${unowned}, owned twice: ${doubled}`);
		if (previous) {
			const moved = QUEUES.filter((q) => previous[q] !== owner[q]);
			console.log(`  moved: ${moved.map((q) => `${q} ${previous[q] || '-'} -> ${owner[q]}`).join(', ') || 'nothing'}`);
		}
		return owner;
	};
	try {
		['work-1', 'work-2', 'work-3'].forEach(start);
		await settle(['work-1', 'work-2', 'work-3']);
		let owner = show('three workers, every queue owned exactly once:', ['work-1', 'work-2', 'work-3']);
		start('work-4');
		await settle(['work-1', 'work-2', 'work-3', 'work-4']);
		owner = show('work-4 joined: only the queues it now owns move, all to it:', ['work-1', 'work-2', 'work-3', 'work-4'], owner);
		children['work-2'].kill('SIGTERM');
		await settle(['work-1', 'work-3', 'work-4']);
		show('work-2 left: only its queues move:', ['work-1', 'work-3', 'work-4'], owner);
	} finally {
		await stopAll(Object.values(children));
		require('fs').rmSync(logDir, { recursive: true, force: true });
	}
}

if (!process.env.WORKER_MEMBER) main().then(() => process.exit(0), (err) => { console.error(err.message); process.exit(1); });

/** SIGTERM every member (a graceful shutdown) and wait until each has exited. */
function stopAll(children) {
	return Promise.all(children.map((child) => new Promise((resolve) => {
		if (child.exitCode !== null || child.signalCode !== null) return resolve();
		child.once('exit', resolve);
		child.kill('SIGTERM');
	})));
}

function freePort() {
	return new Promise((resolve) => {
		const socket = dgram.createSocket('udp4');
		socket.bind(0, '127.0.0.1', () => { const { port } = socket.address(); socket.close(() => resolve(port)); });
	});
}
