/**
 * The floor: the least a heartbeat election must do in a pixl-server process, with no election
 * at all. One UDP socket (address reuse, broadcast), one ~170-byte JSON heartbeat per tick to
 * `broadcast_ip`, every datagram received JSON-parsed into a table, one interval timer per tick.
 * The bench runs it beside our servers to show what an idle server of any such component
 * cannot avoid costing.
 *
 * A copy of the lead engineer's `floor-component.js` (written to measure issue 22's idle cost),
 * kept here because the bench may load nothing from outside the repository. Same socket calls,
 * same datagram, same parsing, same timer; it is a class rather than `Class.create` (as our own
 * component is), which changes nothing it does at run time. Do not make it smarter: it is the
 * yardstick, not a design.
 */
import dgram = require('node:dgram');
import Component = require('pixl-server/component');

class FloorServer extends Component {
  // Under the real component's name, so the bench hands it the same config section.
  override __name = 'MultiServer';
  override defaultConfig: Record<string, unknown> = { comm_port: 3014, heartbeat_freq: 0.5, broadcast_ip: '255.255.255.255' };
  master = false;
  slave = false;
  masterHostname = '';
  servers: Record<string, unknown> | null = null;
  sock: dgram.Socket | null = null;
  timer: NodeJS.Timeout | null = null;

  override startup(callback: (err?: Error | null) => void): void {
    this.servers = {};
    const servers = this.servers;
    const port = this.config.get('comm_port') as number;
    const ip = this.config.get('broadcast_ip') as string;
    const tick = (this.config.get('heartbeat_freq') as number) * 1000;
    const body = Buffer.from(
      JSON.stringify({ action: 'heartbeat', hostname: this.server.hostname, ip: this.server.ip, pad: 'x'.repeat(90) }),
    );
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.sock = sock;
    sock.on('message', (msg) => {
      try {
        const j = JSON.parse(msg as unknown as string) as { hostname: string };
        servers[j.hostname] = j;
      } catch {
        // the floor ignores what it cannot parse
      }
    });
    sock.bind(port, () => {
      sock.setBroadcast(true);
      this.timer = setInterval(() => sock.send(body, port, ip), tick);
      callback();
    });
  }

  override shutdown(callback: () => void): void {
    if (this.timer) clearInterval(this.timer);
    this.sock?.close();
    callback();
  }
}

export = FloorServer;
