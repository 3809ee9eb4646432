// Redis clients from npm against Peter's gateway: two fake-cluster nodes
// (resp_test_server), a subscriber on one and a publisher on the other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import Redis from 'ioredis';
import { createClient } from 'redis';

const PASSWORD = 'pw';
let server;
let ports;

before(async () => {
  server = spawn(process.env.PETER_RESP_TEST_SERVER, [PASSWORD], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  for await (const chunk of server.stdout) {
    out += chunk;
    const m = out.match(/PORTS (\d+) (\d+)/);
    if (m) { ports = [Number(m[1]), Number(m[2])]; break; }
  }
  assert.ok(ports, 'resp_test_server did not start');
});

after(() => { server.stdin.end(); });

// Resolves with the listener's arguments on the first `event`.
const next = (emitter, event) => once(emitter, event);

test('ioredis: subscribe, psubscribe, publish across nodes', async () => {
  const sub = new Redis({ port: ports[0], password: PASSWORD, connectionName: 'ioredis-sub' });
  const pub = new Redis({ port: ports[1], password: PASSWORD });
  try {
    assert.equal(await pub.ping(), 'PONG');
    assert.equal(await pub.echo('hi'), 'hi');
    assert.equal(await pub.client('GETNAME'), null);
    assert.equal(await sub.subscribe('news', 'sport'), 2);
    assert.equal(await sub.psubscribe('ne*'), 3);
    const message = next(sub, 'message');
    const pmessage = next(sub, 'pmessage');
    assert.equal(await pub.publish('news', 'hello'), 0);  // receivers on the publishing node
    assert.deepEqual(await message, ['news', 'hello']);
    assert.deepEqual(await pmessage, ['ne*', 'news', 'hello']);
    assert.deepEqual(await pub.pubsub('NUMSUB', 'news'), ['news', 0]);
    // In subscribed mode ioredis still pings (RESP2 subscribed PING form).
    assert.deepEqual(await sub.ping(), ['pong', '']);
    await assert.rejects(pub.get('k'), /unknown command 'get'/);
    const [unsubscribed] = await Promise.all([sub.unsubscribe('news', 'sport'), sub.punsubscribe()]);
    assert.equal(typeof unsubscribed, 'number');
    // A pipeline keeps replies in order.
    const results = await pub.pipeline().ping().publish('news', 'x').echo('e').exec();
    assert.deepEqual(results, [[null, 'PONG'], [null, 0], [null, 'e']]);
  } finally {
    sub.disconnect();
    pub.disconnect();
  }
});

test('ioredis: wrong password is refused', async () => {
  const bad = new Redis({ port: ports[0], password: 'nope', lazyConnect: true, retryStrategy: () => null });
  const error = once(bad, 'error');
  bad.connect().catch(() => {});
  const [e] = await error;
  assert.match(e.message, /^WRONGPASS invalid username-password pair/);
  bad.disconnect();
});

for (const resp of [2, 3]) {
  test(`node-redis RESP${resp}: subscribe, pSubscribe, sSubscribe across nodes`, async () => {
    const url = (port) => `redis://:${PASSWORD}@127.0.0.1:${port}`;
    const pub = createClient({ url: url(ports[1]), RESP: resp });
    const sub = createClient({ url: url(ports[0]), RESP: resp, name: `node-redis-${resp}` });
    pub.on('error', () => {});
    sub.on('error', () => {});
    await pub.connect();
    await sub.connect();
    try {
      assert.equal(await pub.ping(), 'PONG');
      // Each call resolves once the gateway confirmed the subscription.
      let got, pgot, sgot;
      const received = (set) => new Promise((resolve) => set((msg, ch) => resolve([ch, msg])));
      const g = received((fn) => { got = sub.subscribe(`ch${resp}`, fn); });
      const pg = received((fn) => { pgot = sub.pSubscribe(`c*${resp}`, fn); });
      const sg = received((fn) => { sgot = sub.sSubscribe(`s${resp}`, fn); });
      await Promise.all([got, pgot, sgot]);
      assert.equal(await pub.publish(`ch${resp}`, 'm1'), 0);
      assert.equal(await pub.sPublish(`s${resp}`, 'm2'), 0);
      assert.deepEqual(await g, [`ch${resp}`, 'm1']);
      assert.deepEqual(await pg, [`ch${resp}`, 'm1']);
      assert.deepEqual(await sg, [`s${resp}`, 'm2']);
      await sub.unsubscribe(`ch${resp}`);
      await sub.pUnsubscribe();
      await sub.sUnsubscribe();
    } finally {
      await pub.quit().catch(() => {});
      await sub.quit().catch(() => {});
    }
  });
}

