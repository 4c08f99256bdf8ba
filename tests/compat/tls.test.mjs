// ioredis over TLS (`tls: { ca }`) against a real raftlock node's TLS port.
//
// `tests/tls.rs` starts the node (with `--tls-auth-clients no`) and runs this file with
// `node --test`, passing RAFTLOCK_TLS_PORT and RAFTLOCK_TLS_CA (the CA certificate's
// path). By hand:
//
//     (cd tests/compat && npm ci && RAFTLOCK_TLS_PORT=6380 RAFTLOCK_TLS_CA=ca.crt node --test tls.test.mjs)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";

import Redis from "ioredis";

const PORT = Number.parseInt(process.env.RAFTLOCK_TLS_PORT ?? "", 10);
if (!Number.isInteger(PORT)) {
  throw new Error("RAFTLOCK_TLS_PORT must name the TLS port of a running raftlock node");
}
const CA = readFileSync(process.env.RAFTLOCK_TLS_CA ?? "");

const clients = [];

function connect() {
  const client = new Redis({
    host: "127.0.0.1",
    port: PORT,
    tls: { ca: CA },
    connectTimeout: 10_000,
    commandTimeout: 30_000,
    maxRetriesPerRequest: 2,
    retryStrategy: () => null,
  });
  clients.push(client);
  return client;
}

after(async () => {
  await Promise.all(clients.map((c) => c.quit()));
});

test("commands, pipelines and scripts work over TLS", async () => {
  const redis = connect();
  assert.equal(await redis.set("tls:key", "value"), "OK");
  assert.equal(await redis.get("tls:key"), "value");
  const replies = await redis.pipeline().incr("tls:n").incr("tls:n").get("tls:n").exec();
  assert.deepEqual(
    replies.map(([err, reply]) => err ?? reply),
    [1, 2, "2"],
  );
  const script = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', 30000)";
  assert.equal(await redis.eval(script, 1, "tls:lock", "token"), "OK");
  assert.equal(await redis.eval(script, 1, "tls:lock", "other"), null);
});

test("a lock waiter over TLS is granted when the holder unlocks", async () => {
  const holder = connect();
  const waiter = connect();
  const token = await holder.call("LOCK", "tls:res", "a", "30000");
  assert.ok(Number(token) > 0);
  const waiting = waiter.call("LOCK", "tls:res", "b", "30000", "WAIT", "20000");
  assert.equal(await holder.call("UNLOCK", "tls:res", "a"), 0);
  assert.ok(Number(await waiting) > Number(token));
});

test("pub/sub messages reach a TLS subscriber", async () => {
  const subscriber = connect();
  const publisher = connect();
  const received = new Promise((resolve) => subscriber.on("message", (ch, msg) => resolve([ch, msg])));
  await subscriber.subscribe("tls:channel");
  assert.equal(await publisher.publish("tls:channel", "hello"), 1);
  assert.deepEqual(await received, ["tls:channel", "hello"]);
});
