// Redis clients no one here wrote (ioredis and node-redis from npm, and
// Debian's redis-cli) against three real `peter node --resp` processes on
// loopback: subscribe on one node, publish on another, patterns,
// unsubscribe, RESP3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import { createClient } from 'redis';

const PETER = process.env.PETER_BINARY;
const REDIS_CLI = '/usr/bin/redis-cli';
const nodes = [];  // { process, listen, resp }

// Starts `peter node --resp` and resolves once it is active.
async function startNode(join) {
  const args = ['node', '--listen', '127.0.0.1:0', '--resp', '127.0.0.1:0'];
  if (join) args.push('--join', join);
  const child = spawn(PETER, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const node = { process: child };
  nodes.push(node);
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    // listening <host:port> id <hex> admin <host:port|-> resp <host:port>
    const m = line.match(/^listening (\S+) id \S+ admin \S+ resp 127\.0\.0\.1:(\d+)$/);
    if (m) { node.listen = m[1]; node.resp = Number(m[2]); }
    if (line === 'active') return node;
  }
  throw new Error(`peter node exited before it was active (code ${child.exitCode})`);
}

before(async () => {
  assert.ok(PETER, 'PETER_BINARY is not set');
  const seed = await startNode();
  await startNode(seed.listen);
  await startNode(seed.listen);
});

after(async () => {
  await Promise.all(nodes.map(async ({ process: p }) => {
    if (p.exitCode !== null) return;
    p.kill('SIGTERM');
    await once(p, 'exit');
  }));
});

const port = (i) => nodes[i].resp;

// A pattern reaches other nodes a propagation window after PSUBSCRIBE's
// confirmation (docs/resp.md, "The window"): publish on a matching warm-up
// channel through `publish` until `arrived()` says one came.
async function warmUp(publish, arrived) {
  for (let i = 0; i < 40; ++i) {
    await publish();
    await sleep(250);
    if (arrived()) return;
  }
  assert.fail('the pattern never reached the publishing node');
}

test('ioredis: subscribe on one node, publish on another; patterns; unsubscribe', async () => {
  const sub = new Redis({ port: port(1) });
  const pub = new Redis({ port: port(2) });
  const got = [];
  sub.on('message', (channel, message) => got.push(['message', channel, message]));
  sub.on('pmessage', (pattern, channel, message) => got.push(['pmessage', pattern, channel, message]));
  try {
    assert.equal(await sub.subscribe('io.news'), 1);
    // PUBLISH counts the receivers on the node that took it (Redis Cluster).
    assert.equal(await pub.publish('io.news', 'hello'), 0);
    while (got.length < 1) await sleep(10);
    assert.deepEqual(got.shift(), ['message', 'io.news', 'hello']);

    assert.equal(await sub.psubscribe('io.user.*'), 2);
    await warmUp(() => pub.publish('io.user.warm', 'w'), () => got.length > 0);
    await sleep(300);
    got.length = 0;  // later warm-up messages
    await pub.publish('io.user.42', 'hi');
    await pub.publish('io.order.1', 'no');  // matches nothing
    await pub.publish('io.news', 'again');
    while (got.length < 2) await sleep(10);
    await sleep(300);
    assert.deepEqual(got.splice(0).sort(), [
      ['message', 'io.news', 'again'],
      ['pmessage', 'io.user.*', 'io.user.42', 'hi'],
    ]);

    assert.deepEqual(await pub.pubsub('NUMSUB', 'io.news'), ['io.news', 0]);  // node-local
    assert.equal(await sub.unsubscribe('io.news'), 1);
    assert.equal(await sub.punsubscribe('io.user.*'), 0);
    await pub.publish('io.news', 'gone');
    await pub.publish('io.user.1', 'gone');
    // A third subscriber on the publishing node proves the messages flowed.
    const witness = new Redis({ port: port(2) });
    const seen = new Promise((resolve) => witness.on('message', (c, m) => resolve(m)));
    await witness.subscribe('io.news');
    await pub.publish('io.news', 'after');
    assert.equal(await seen, 'after');
    witness.disconnect();
    assert.deepEqual(got, []);
  } finally {
    sub.disconnect();
    pub.disconnect();
  }
});

test('node-redis RESP3: subscribe, pSubscribe, sSubscribe across nodes', async () => {
  const pub = createClient({ url: `redis://127.0.0.1:${port(0)}`, RESP: 3 });
  const sub = createClient({ url: `redis://127.0.0.1:${port(1)}`, RESP: 3 });
  pub.on('error', () => {});
  sub.on('error', () => {});
  await pub.connect();
  await sub.connect();
  try {
    const got = [];
    await sub.subscribe('nr.ch', (message, channel) => got.push(['message', channel, message]));
    await sub.sSubscribe('nr.shard', (message, channel) => got.push(['smessage', channel, message]));
    await sub.pSubscribe('nr.p.*', (message, channel) => got.push(['pmessage', channel, message]));
    await warmUp(() => pub.publish('nr.p.warm', 'w'), () => got.length > 0);
    await sleep(300);
    got.length = 0;
    assert.equal(await pub.publish('nr.ch', 'm1'), 0);
    assert.equal(await pub.sPublish('nr.shard', 'm2'), 0);
    assert.equal(await pub.publish('nr.p.x', 'm3'), 0);
    while (got.length < 3) await sleep(10);
    assert.deepEqual(got.sort(), [
      ['message', 'nr.ch', 'm1'],
      ['pmessage', 'nr.p.x', 'm3'],
      ['smessage', 'nr.shard', 'm2'],
    ]);
    await sub.unsubscribe('nr.ch');
    await sub.pUnsubscribe();
    await sub.sUnsubscribe();
    assert.equal(await pub.publish('nr.ch', 'late'), 0);
    assert.equal(await pub.publish('nr.p.y', 'late'), 0);
    await sleep(500);
    assert.deepEqual(got.slice(3), []);
  } finally {
    await pub.quit().catch(() => {});
    await sub.quit().catch(() => {});
  }
});

// redis-cli prints each reply's elements as lines; collects them.
function lineCollector(child) {
  const lines = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  return lines;
}

test('redis-cli: RESP3 subscriber on one node, publisher on another; patterns', async () => {
  const cli = (p, ...args) =>
    execFileSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(p), ...args]).toString().trim();
  // -3: RESP3 (HELLO 3), so the confirmation and the message are pushes.
  const sub = spawn(REDIS_CLI, ['-3', '-h', '127.0.0.1', '-p', String(port(2)), 'SUBSCRIBE', 'cli.ch']);
  const psub = spawn(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port(1)), 'PSUBSCRIBE', 'cli.p.*']);
  const subLines = lineCollector(sub);
  const psubLines = lineCollector(psub);
  try {
    // Once confirmed (3 lines: kind, channel, count) a publish must arrive.
    while (subLines.length < 3 || psubLines.length < 3) await sleep(10);
    assert.deepEqual(subLines.splice(0), ['subscribe', 'cli.ch', '1']);
    assert.deepEqual(psubLines.splice(0), ['psubscribe', 'cli.p.*', '1']);
    assert.equal(cli(port(0), 'PUBLISH', 'cli.ch', 'hello'), '0');
    while (subLines.length < 3) await sleep(10);
    assert.deepEqual(subLines, ['message', 'cli.ch', 'hello']);
    await warmUp(() => cli(port(0), 'PUBLISH', 'cli.p.warm', 'w'), () => psubLines.length >= 4);
    await sleep(300);
    psubLines.length = 0;
    assert.equal(cli(port(0), 'PUBLISH', 'cli.p.x', 'hi'), '0');
    while (psubLines.length < 4) await sleep(10);
    assert.deepEqual(psubLines, ['pmessage', 'cli.p.*', 'cli.p.x', 'hi']);
    assert.equal(cli(port(1), 'PUBSUB', 'NUMPAT'), '1');  // node-local
    assert.equal(cli(port(0), 'PUBSUB', 'NUMPAT'), '0');
  } finally {
    sub.kill();
    psub.kill();
  }
});
