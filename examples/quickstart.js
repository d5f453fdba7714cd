// Two servers on one machine, in the foreground, printing what the election does.
//
//   node examples/quickstart.js alpha      # terminal 1
//   node examples/quickstart.js bravo      # terminal 2
//
// alpha becomes master about 3 s after it starts (one tock of listening), bravo learns
// that at once. Ctrl-C alpha: bravo takes over within milliseconds (shutdown notice).
// `kill -9` alpha instead: bravo takes over about 3.01 s after alpha's last heartbeat
// (a tock and a grace that follows the machine's load: 10 ms and a little on a quiet one).
//
// Everything stays on this machine: heartbeats go to 127.255.255.255 (loopback).
// An optional second argument sets the UDP port (default 30014), the same for both.
'use strict';
const os = require('os');
const PixlServer = require('pixl-server');

const hostname = process.argv[2] || 'alpha';
const port = Number(process.argv[3] || 30014);

const server = new PixlServer({
	__name: 'QuickStart',
	__version: '1.0',
	config: {
		hostname,                 // each server of a cluster needs its own
		ip: '127.0.0.1',
		foreground: true,         // pixl-server daemonizes unless told otherwise
		echo: 'MultiServer',      // copy this component's log lines to the terminal
		debug_level: 4,           // 4: elections and state changes (see "Log levels")
		log_dir: os.tmpdir(),
		log_filename: `quickstart-${hostname}.log`,
		MultiServer: {
			comm_port: port,
			broadcast_ip: '127.255.255.255', // loopback only; on a LAN leave it unset
			heartbeat_freq: 1,               // tick 1 s, tock 3 s: failover in about 3 s
		},
	},
	components: [require('pixl-server-multi')],
});

const multi = () => server.MultiServer;
const say = (text) => console.log(`${new Date().toISOString().slice(11, 23)} ${hostname}: ${text}`);

server.on('master', (term) => say(`EVENT master: we are the master (term ${term})`));
server.on('slave', () => say(`EVENT slave: the master is ${multi().masterHostname || '(being elected)'}`));
server.on('addserver', (record) => say(`EVENT addserver: ${record.hostname} (${record.ip})`));
server.on('deleteserver', (record) => say(`EVENT deleteserver: ${record.hostname}`));
server.on('masterchange', (now, before) => say(`EVENT masterchange: ${before || '(none)'} -> ${now || '(none)'}`));

server.startup(() => say(`started on UDP port ${port}; listening for the cluster`));
