/**
 * The README's fencing recipes, exactly as printed there (the Lua script and the SQL are read
 * from README.md), against real servers: Debian's redis-server and PostgreSQL, each started by
 * the test on a free 127.0.0.1 port in a temp dir. A write carrying a term is refused once a
 * higher term has written; equal terms are accepted. The terms come from literals and from a
 * real failover: two pixl-server processes on loopback, the master frozen (SIGSTOP) until the
 * other took over; the deposed master's write, stamped with the term it held, is refused.
 * Each store's tests skip, naming the Debian package, where the server is not installed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ProcessCluster } from '../tools/process-cluster';
import { PostgresServer, postgresUnavailable, POSTGRES_PACKAGE, RedisServer, redisUnavailable, REDIS_PACKAGE } from '../tools/stores';

const README = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

/** The fenced blocks of the README's fencing section, in order. */
function recipeBlocks(language: string): string[] {
  const start = README.indexOf('### Fencing writes with the term');
  const end = README.indexOf('\n## ', start);
  assert.ok(start >= 0 && end > start, 'the README has a fencing section');
  const section = README.slice(start, end);
  return [...section.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] as string);
}

const FENCED_SET = ((): string => {
  const [lua] = recipeBlocks('lua');
  assert.ok(lua, 'a Lua recipe in the fencing section');
  return lua;
})();

/** The SQL recipe's statements: the table, then the fencing INSERT. */
const [CREATE_FENCE, FENCE] = ((): string[] => {
  const [sql] = recipeBlocks('sql');
  assert.ok(sql, 'an SQL recipe in the fencing section');
  const statements = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
  assert.equal(statements.length, 2, `the SQL recipe: CREATE TABLE, then the INSERT (got ${statements.length} statements)`);
  return statements;
})() as [string, string];

/** Terms from a real failover: what the deposed master held, and what its successor got. */
interface RealTerms {
  deposed: number;
  successor: number;
}
let realTerms: RealTerms | null = null;

async function failoverTerms(): Promise<RealTerms> {
  if (realTerms) return realTerms;
  const cluster = new ProcessCluster({ heartbeatFreq: 0.25, checkBeats: 3 });
  try {
    await cluster.start('alpha');
    await cluster.start('bravo');
    await cluster.waitAgreed(10_000, 'alpha');
    const deposed = cluster.state('alpha')?.term ?? 0;
    assert.ok(deposed >= 1);
    cluster.kill('alpha', 'SIGSTOP');
    await cluster.waitFor(() => cluster.state('bravo')?.master === true, 10_000, 'bravo to take over from the frozen alpha');
    const successor = cluster.state('bravo')?.term ?? 0;
    cluster.kill('alpha', 'SIGCONT');
    await cluster.waitAgreed(10_000, 'bravo');
    assert.ok(successor > deposed, `the successor's term ${successor} is above the deposed master's ${deposed}`);
    realTerms = { deposed, successor };
    return realTerms;
  } finally {
    await cluster.stopAll();
  }
}

const redisSkip = redisUnavailable();
describe("fencing recipe: Redis (the README's Lua script)", {
  skip: redisSkip ? `real Redis needed: ${redisSkip} (Debian package ${REDIS_PACKAGE})` : false,
}, () => {
  let server: RedisServer;
  let redis: import('ioredis').default & { fencedSet(fence: string, key: string, term: number | string, value: string): Promise<number> };
  let keys = 0;
  const fresh = (): [string, string] => {
    keys++;
    return [`{sched${keys}}:term`, `{sched${keys}}:state`];
  };

  before(async () => {
    server = await RedisServer.start();
    const { default: Redis } = await import('ioredis');
    redis = new Redis({ host: '127.0.0.1', port: server.port }) as typeof redis;
    redis.defineCommand('fencedSet', { numberOfKeys: 2, lua: FENCED_SET });
  });
  after(async () => {
    redis?.disconnect();
    await server?.close();
  });

  test('a write is applied while its term is not below the highest written; a lower one is refused and changes nothing', async () => {
    const [fence, state] = fresh();
    assert.equal(await redis.fencedSet(fence, state, 3, 'a'), 1, 'the first write');
    assert.equal(await redis.fencedSet(fence, state, 3, 'b'), 1, 'the same master again (equal term)');
    assert.equal(await redis.fencedSet(fence, state, 2, 'stale'), 0, 'a lower term');
    assert.equal(await redis.get(state), 'b');
    assert.equal(await redis.get(fence), '3');
    assert.equal(await redis.fencedSet(fence, state, 4, 'c'), 1, 'a higher term');
    assert.equal(await redis.fencedSet(fence, state, 3, 'stale'), 0, 'the old master after the new one wrote');
    assert.equal(await redis.get(state), 'c');
  });

  test('any sequence of terms: exactly the writes not below every earlier accepted term are applied', async () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 20; round++) {
      const [fence, state] = fresh();
      let highest = 0;
      let last: string | null = null;
      for (let i = 0; i < 30; i++) {
        // Terms near the top of the range JSON numbers carry exactly, as after a forged flood.
        const term = round % 2 === 0 ? 1 + Math.floor(random() * 10) : Number.MAX_SAFE_INTEGER - Math.floor(random() * 10);
        const value = `${round}:${i}`;
        const accepted = (await redis.fencedSet(fence, state, term, value)) === 1;
        assert.equal(accepted, term >= highest, `term ${term} against the highest ${highest}`);
        if (accepted) {
          highest = term;
          last = value;
        }
      }
      assert.equal(await redis.get(state), last);
      assert.equal(Number(await redis.get(fence)), highest);
    }
  });

  test('a term that is not a number is an error, and writes nothing', async () => {
    const [fence, state] = fresh();
    await assert.rejects(redis.fencedSet(fence, state, 'NaN-ish', 'x'), /term must be a number/);
    assert.equal(await redis.get(state), null);
  });

  test("terms of a real failover: the deposed master's write is refused once its successor wrote", async () => {
    const { deposed, successor } = await failoverTerms();
    const [fence, state] = fresh();
    assert.equal(await redis.fencedSet(fence, state, deposed, 'alpha: job 1'), 1, 'the master before it froze');
    assert.equal(await redis.fencedSet(fence, state, successor, 'bravo: job 1'), 1, 'the new master');
    assert.equal(await redis.fencedSet(fence, state, deposed, 'alpha: job 2, after waking'), 0, 'the woken master');
    assert.equal(await redis.get(state), 'bravo: job 1');
  });
});

const postgresSkip = postgresUnavailable();
describe("fencing recipe: PostgreSQL (the README's SQL)", {
  skip: postgresSkip ? `real PostgreSQL needed: ${postgresSkip} (Debian package ${POSTGRES_PACKAGE})` : false,
}, () => {
  let server: PostgresServer;
  const clients: Array<import('pg').Client> = [];
  let names = 0;

  async function connect(): Promise<import('pg').Client> {
    const client = server.client();
    await client.connect();
    clients.push(client);
    return client;
  }

  /** The README's transaction: fence first, then the write; returns whether it committed. */
  async function fencedWrite(db: import('pg').Client, name: string, term: number, value: string): Promise<boolean> {
    await db.query('BEGIN');
    if ((await db.query(FENCE, [name, term])).rowCount === 0) {
      await db.query('ROLLBACK');
      return false;
    }
    await db.query('INSERT INTO jobs (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value', [name, value]);
    await db.query('COMMIT');
    return true;
  }

  async function value(db: import('pg').Client, name: string): Promise<string | null> {
    const result = await db.query<{ value: string }>('SELECT value FROM jobs WHERE name = $1', [name]);
    return result.rows[0]?.value ?? null;
  }

  before(async () => {
    server = await PostgresServer.start();
    const db = await connect();
    await db.query(CREATE_FENCE);
    await db.query('CREATE TABLE jobs (name text PRIMARY KEY, value text NOT NULL)');
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await server?.close();
  });

  test('a write is applied while its term is not below the highest written; a lower one is refused and rolled back', async () => {
    const db = await connect();
    const name = `n${++names}`;
    assert.equal(await fencedWrite(db, name, 3, 'a'), true);
    assert.equal(await fencedWrite(db, name, 3, 'b'), true, 'equal term');
    assert.equal(await fencedWrite(db, name, 2, 'stale'), false, 'lower term');
    assert.equal(await value(db, name), 'b');
    assert.equal(await fencedWrite(db, name, 2 ** 53 - 1, 'c'), true, 'the largest term JSON carries exactly');
    assert.equal(await fencedWrite(db, name, 2 ** 53 - 2, 'stale'), false);
    assert.equal(await value(db, name), 'c');
  });

  test('concurrent writers: a lower term waiting on the fence row is refused once the higher one commits', async () => {
    const high = await connect();
    const low = await connect();
    const name = `n${++names}`;
    await high.query('BEGIN');
    assert.equal((await high.query(FENCE, [name, 7])).rowCount, 1);
    // The old master's transaction blocks on the row the new master holds...
    await low.query('BEGIN');
    const lowFence = low.query(FENCE, [name, 5]);
    let settled = false;
    void lowFence.then(
      () => (settled = true),
      () => (settled = true),
    );
    // ...while the new master is still writing (its query has to queue behind nothing but its own).
    await high.query('INSERT INTO jobs (name, value) VALUES ($1, $2)', [name, 'new master']);
    assert.equal(settled, false, 'the lower term went through the fence while the higher one held it');
    await high.query('COMMIT');
    assert.equal((await lowFence).rowCount, 0, 'the lower term after the higher one committed');
    await low.query('ROLLBACK');
    assert.equal(await value(high, name), 'new master');
  });

  test('concurrent writers: a higher term waits for a lower one already holding the fence, then writes after it', async () => {
    const high = await connect();
    const low = await connect();
    const name = `n${++names}`;
    await low.query('BEGIN');
    assert.equal((await low.query(FENCE, [name, 5])).rowCount, 1);
    const highWrite = fencedWrite(high, name, 7, 'new master');
    await low.query('INSERT INTO jobs (name, value) VALUES ($1, $2)', [name, 'old master']);
    await low.query('COMMIT');
    assert.equal(await highWrite, true);
    assert.equal(await value(low, name), 'new master', "the higher term's write is the later one");
    assert.equal(await fencedWrite(low, name, 5, 'old master again'), false);
  });

  test("terms of a real failover: the deposed master's write is refused once its successor wrote", async () => {
    const { deposed, successor } = await failoverTerms();
    const db = await connect();
    const name = `n${++names}`;
    assert.equal(await fencedWrite(db, name, deposed, 'alpha: job 1'), true, 'the master before it froze');
    assert.equal(await fencedWrite(db, name, successor, 'bravo: job 1'), true, 'the new master');
    assert.equal(await fencedWrite(db, name, deposed, 'alpha: job 2, after waking'), false, 'the woken master');
    assert.equal(await value(db, name), 'bravo: job 1');
  });
});
