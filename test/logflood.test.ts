/**
 * Remote input does not control the log volume: a flood of forged master claims, junk from
 * hundreds of source addresses, and replays each write a bounded number of lines, whatever
 * the rate or the number of senders, and say how many they suppressed. Real pixl-server
 * instances on loopback; the forger and the junk senders are sockets of this process,
 * sending to 127.255.255.255 / 127.0.0.1 only.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { freeUdpPort } from '../tools/loopback';
import { logFolder, makeServer, multi, start, stop, until } from './helpers/pixl';
import { LOG_BUDGET_DEFAULTS } from '../src/util/log-budget';
import { pause } from './helpers/wait';

const logs = logFolder('psm-logflood-');
after(() => logs.remove());

function lines(hostname: string): string[] {
  return readFileSync(path.join(logs.dir, `${hostname}.log`), 'utf8')
    .split('\n')
    .filter(Boolean);
}

function socketOn(address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ address, port: 0 }, () => resolve(socket));
  });
}

function send(socket: dgram.Socket, text: string, port: number, address = '127.0.0.1'): Promise<void> {
  return new Promise((resolve) => socket.send(Buffer.from(text + '\n'), port, address, () => resolve()));
}

describe('log volume under remote input', () => {
  test('3,000 forged master claims a second for 2 s: a bounded number of lines, counted as suppressed', async () => {
    const port = await freeUdpPort();
    const server = makeServer('victim', port, logs.dir, {}, { debug_level: 2 });
    const forger = await socketOn('127.0.0.1');
    try {
      await start(server);
      await until(() => multi(server).master, 'a lone master', [server]);
      const before = lines('victim').length;
      const started = Date.now();
      let sent = 0;
      // At least 2 s and 4,000 packets: a busy machine sends more slowly, and the budget below
      // is per second of flood, so a longer flood is allowed proportionally more lines.
      while ((Date.now() - started < 2000 || sent <= 4000) && Date.now() - started < 30_000) {
        const burst: Promise<void>[] = [];
        for (let i = 0; i < 30; i++) {
          sent++;
          burst.push(
            send(
              forger,
              JSON.stringify({
                hostname: `zz${sent % 50}`,
                ip: '10.6.6.6',
                master: 1,
                eligible: 1,
                uptime: 1,
                data: {},
                action: 'heartbeat',
                iid: 'f0f0f0f0f0f0f0f0',
                seq: sent,
                term: sent,
              }),
              port,
            ),
          );
        }
        await Promise.all(burst);
        await pause(10);
      }
      const seconds = (Date.now() - started) / 1000;
      await pause(300);
      const written = lines('victim').slice(before);
      const conflicts = written.filter((line) => line.includes('MASTER CONFLICT'));
      const budget = LOG_BUDGET_DEFAULTS.operatorBurst + Math.ceil(seconds + 1) * LOG_BUDGET_DEFAULTS.operatorPerSecond;
      assert.ok(sent > 4000, `only ${sent} packets sent`);
      assert.ok(conflicts.length <= 1, `${conflicts.length} MASTER CONFLICT lines`);
      assert.ok(written.length <= budget + 10, `${written.length} lines for ${sent} packets (budget ${budget})`);
      assert.ok(multi(server).stats.logsSuppressed > 0, 'nothing counted as suppressed');
      assert.ok(multi(server).stats.packetsIn > 1000, 'the flood did not arrive');
    } finally {
      forger.close();
      await stop(server);
    }
  });

  test('junk from 300 source addresses: one line per kind of drop, not one per sender', async () => {
    const port = await freeUdpPort();
    const server = makeServer('target', port, logs.dir, {}, { debug_level: 3 });
    const senders: dgram.Socket[] = [];
    try {
      await start(server);
      const before = lines('target').length;
      for (let i = 0; i < 300; i++) senders.push(await socketOn(`127.0.${1 + Math.floor(i / 200)}.${1 + (i % 200)}`));
      // In batches, so the socket's receive buffer (a few hundred KB) is not what is measured.
      for (let i = 0; i < senders.length; i++) {
        const socket = senders[i] as dgram.Socket;
        await send(socket, 'not json at all', port);
        await send(socket, '{"action":"heartbeat","hostname":"x"}', port);
        if (i % 20 === 19) await pause(10);
      }
      await until(
        () => (multi(server).stats.dropped['not-json'] ?? 0) >= 300 && (multi(server).stats.dropped['bad-field'] ?? 0) >= 300,
        `the junk to arrive (${JSON.stringify(multi(server).stats.dropped)}, ${multi(server).stats.packetsIn} in)`,
        [server],
      );
      await pause(100);
      const dropped = lines('target')
        .slice(before)
        .filter((line) => line.includes('Dropped datagram'));
      assert.equal(dropped.filter((line) => line.includes('not-json')).length, 1, dropped.join('\n'));
      assert.equal(dropped.filter((line) => line.includes('bad-field')).length, 1, dropped.join('\n'));
    } finally {
      for (const socket of senders) socket.close();
      await stop(server);
    }
  });
});
