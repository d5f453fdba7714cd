/**
 * A flooder for the bench (a process of its own, so the bench's clock is not what is
 * measured): forged heartbeats under unknown hostnames to 127.255.255.255 at a given rate for
 * a given time, then it reports how many it sent. Loopback only.
 */
import * as dgram from 'node:dgram';
import { assertLoopback } from './loopback';

const BROADCAST = '127.255.255.255';

function main(): void {
  const [port, rate, seconds] = process.argv.slice(2).map(Number) as [number, number, number];
  assertLoopback(BROADCAST);
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.bind(0, '127.0.0.1', () => {
    socket.setBroadcast(true);
    let sent = 0;
    const started = Date.now();
    const step = (): void => {
      const elapsed = Date.now() - started;
      if (elapsed >= seconds * 1000) {
        process.send?.({ sent, ms: elapsed });
        socket.close();
        return;
      }
      const due = Math.floor((rate * elapsed) / 1000);
      let burst = 0;
      while (sent < due && burst < 500) {
        sent++;
        burst++;
        const text =
          JSON.stringify({
            hostname: `zz${sent % 5000}`,
            ip: '10.6.6.6',
            master: 0,
            eligible: 1,
            uptime: 1,
            data: {},
            action: 'heartbeat',
            iid: 'f0f0f0f0f0f0f0f0',
            seq: sent,
          }) + '\n';
        socket.send(text, port, BROADCAST);
      }
      setImmediate(step);
    };
    step();
  });
}

main();
