// A job scheduler that runs only on the master and resumes from the master's checkpoint
// after a failover. Three pixl-server processes on loopback; the master is killed with
// SIGKILL halfway through and the next master carries on from the next job.
//
//   node examples/scheduler.js
//
// Everything stays on this machine: broadcast 127.255.255.255 on a free port.
'use strict';
const { fork } = require('child_process');
const dgram = require('dgram');
const os = require('os');
const path = require('path');

if (process.env.SCHEDULER_MEMBER) member();
else main();

function member() {
	const PixlServer = require('pixl-server');
	const { hostname, port, logDir } = JSON.parse(process.env.SCHEDULER_MEMBER);
	const server = new PixlServer({
		__name: 'Scheduler',
		__version: '1.0',
		config: {
			hostname, ip: '127.0.0.1', foreground: true, exit_on_shutdown: true, log_dir: logDir, log_filename: hostname + '.log', debug_level: 5,
			MultiServer: { comm_port: port, heartbeat_freq: 0.1, check_beats: 5, broadcast_ip: '127.255.255.255' }
		},
		components: [ require('pixl-server-multi') ]
	});
	let timer = null;
	server.on('master', (term, checkpoint) => {
		let next = checkpoint ? checkpoint.next : 1;
		process.send({ hostname, note: `became master (term ${term}), resuming at job ${next}` });
		timer = setInterval(() => {
			const job = next++;
			// ... run the job here, then record progress so a successor starts after it.
			// A crash between running a job and this line repeats that one job on the next
			// master (at least once), so real jobs should be idempotent.
			server.MultiServer.setCheckpoint({ next });
			// Report once the checkpoint datagram is out (dgram sends on a later tick), so the
			// demo's SIGKILL after job 5 lands after it, as a crash after a finished job would.
			setImmediate(() => process.send({ hostname, job, term }));
		}, 150);
	});
	server.on('slave', () => {
		if (timer) clearInterval(timer);
		timer = null;
	});
	process.on('disconnect', () => process.exit(0));
	server.startup();
}

async function main() {
	const port = await freePort();
	const logDir = require('fs').mkdtempSync(path.join(os.tmpdir(), 'scheduler-example-'));
	const members = {};
	const jobs = [];
	let killed = false;
	let done;
	const finished = new Promise((resolve) => { done = resolve; });
	for (const hostname of ['sched-a', 'sched-b', 'sched-c']) {
		const child = fork(__filename, [], { env: { ...process.env, SCHEDULER_MEMBER: JSON.stringify({ hostname, port, logDir }) } });
		members[hostname] = child;
		child.on('message', (msg) => {
			if (msg.note) console.log(`${msg.hostname}: ${msg.note}`);
			if (msg.job === undefined) return;
			jobs.push(msg);
			console.log(`  job ${String(msg.job).padStart(2)} ran on ${msg.hostname} (term ${msg.term})`);
			if (msg.job === 5 && !killed) {
				killed = true;
				console.log(`SIGKILL ${msg.hostname}, the master, right after job 5`);
				members[msg.hostname].kill('SIGKILL');
			}
			if (msg.job >= 12) done();
		});
	}
	const timeout = setTimeout(() => { console.error('example did not finish in 20 s'); process.exit(1); }, 20000);
	await finished;
	clearTimeout(timeout);
	await stopAll(Object.values(members));
	require('fs').rmSync(logDir, { recursive: true, force: true });
	const numbers = jobs.map((j) => j.job);
	const skipped = numbers.filter((n, i) => i > 0 && n > numbers[i - 1] + 1);
	const repeated = numbers.filter((n, i) => i > 0 && n <= numbers[i - 1]);
	console.log(`jobs run: ${numbers.join(', ')}`);
	console.log(skipped.length ? `jobs skipped before ${skipped.join(', ')}` : 'no job skipped across the failover');
	if (repeated.length) console.log(`repeated: job ${repeated.join(', ')} (in flight when the master died)`);
	process.exit(skipped.length === 0 && repeated.length <= 1 ? 0 : 1);
}

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
