// The `redlock` package (v5), unmodified, on ioredis against a real raftlock node.
//
// `tests/compat.rs` starts the node and runs this file with `node --test`, passing the
// node's port in RAFTLOCK_PORT. By hand, against a node of your own:
//
//     (cd tests/compat && npm ci && RAFTLOCK_PORT=6379 node --test redlock.test.mjs)
//
// redlock acquires, extends and releases with Lua scripts (EVALSHA first, EVAL after a
// NOSCRIPT reply). Waits are bounded and generous: the machine that runs the tests is
// shared and noisy, so no test depends on how fast the server answers.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import Redis from "ioredis";
import Redlock, { ExecutionError, ResourceLockedError } from "redlock";

import { must, why } from "./redlock_support.mjs";

const HOST = process.env.RAFTLOCK_HOST ?? "127.0.0.1";
const PORT = Number.parseInt(process.env.RAFTLOCK_PORT ?? "", 10);
if (!Number.isInteger(PORT)) {
  throw new Error("RAFTLOCK_PORT must name the port of a running raftlock node");
}

// How long a test waits for something that must happen before it fails.
const EVENTUALLY_MS = 30_000;

const clients = [];

function connect() {
  const client = new Redis({
    host: HOST,
    port: PORT,
    connectTimeout: 10_000,
    commandTimeout: EVENTUALLY_MS,
    maxRetriesPerRequest: 2,
    // The tests end by quitting every client; nothing should reconnect behind them.
    retryStrategy: (times) => (times > 5 ? null : 200),
  });
  clients.push(client);
  return client;
}

/** A resource name no other test uses. */
function resource(label) {
  return `compat:redlock:${label}:${randomUUID()}`;
}

/** Asserts that a redlock call fails because the resource is held by someone else. */
async function refusedAsLocked(promise) {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, "expected the operation to be refused");
  assert.ok(error instanceof ExecutionError, await why(error));
  const causes = [];
  for (const attempt of error.attempts) {
    const stats = await attempt;
    causes.push(...stats.votesAgainst.values());
  }
  assert.ok(causes.length > 0, "no votes against");
  for (const cause of causes) {
    assert.ok(
      cause instanceof ResourceLockedError,
      `refused for another reason: ${cause.name}: ${cause.message}`,
    );
  }
}

async function waitUntil(predicate, what) {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!(await predicate())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(50);
  }
}

let redis;
let redlock;

before(async () => {
  redis = connect();
  redlock = new Redlock([redis], { retryCount: 0 });
});

after(async () => {
  await Promise.allSettled(clients.map((client) => client.quit()));
});

describe("ioredis", () => {
  test("connects and answers", async () => {
    assert.equal(await redis.ping(), "PONG");
  });

  test("runs scripts (redlock needs EVALSHA and EVAL)", async () => {
    assert.equal(await redis.eval("return ARGV[1]", 0, "x"), "x");
    const sha = await redis.script("LOAD", "return 7");
    assert.equal(await redis.evalsha(sha, 0), 7);
  });
});

describe("redlock", () => {
  test("acquire and release", async () => {
    const key = resource("basic");
    const lock = await must(redlock.acquire([key], 10_000));
    assert.equal(await redis.get(key), lock.value);
    const pttl = await redis.pttl(key);
    assert.ok(pttl > 0 && pttl <= 10_000, `pttl ${pttl}`);
    assert.ok(lock.expiration > Date.now());

    await refusedAsLocked(redlock.acquire([key], 10_000));
    assert.equal(await redis.get(key), lock.value, "a refused acquire changed the lock");

    await must(lock.release());
    assert.equal(await redis.exists(key), 0);

    // Free again: acquirable at once.
    const again = await must(redlock.acquire([key], 10_000));
    await must(again.release());
  });

  test("extend", async () => {
    const key = resource("extend");
    const lock = await must(redlock.acquire([key], 2_000));
    const extended = await must(lock.extend(20_000));
    assert.equal(extended.value, lock.value);
    assert.equal(await redis.get(key), lock.value);
    const pttl = await redis.pttl(key);
    assert.ok(pttl > 10_000 && pttl <= 20_000, `pttl after extend ${pttl}`);
    assert.ok(extended.expiration > Date.now() + 10_000);
    // The extended lock replaces the old one, which redlock no longer extends.
    await assert.rejects(lock.extend(20_000), ExecutionError);
    await must(extended.release());
    assert.equal(await redis.exists(key), 0);
  });

  test("several resources are locked all or none", async () => {
    const [a, b, c] = [resource("a"), resource("b"), resource("c")];
    const lock = await must(redlock.acquire([a, b], 10_000));
    assert.deepEqual(await redis.mget(a, b), [lock.value, lock.value]);
    // b is taken, so c must not be locked either.
    await refusedAsLocked(redlock.acquire([b, c], 10_000));
    assert.equal(await redis.exists(c), 0);
    await must(lock.release());
    assert.equal(await redis.exists(a, b), 0);
  });

  test("release and extend after the lease ran out and another client took it", async () => {
    const key = resource("expired");
    const other = new Redlock([connect()], { retryCount: 0 });
    const stale = await must(redlock.acquire([key], 300));
    await waitUntil(async () => (await redis.exists(key)) === 0, "the lease to run out");
    const current = await must(other.acquire([key], 30_000));

    await assert.rejects(stale.extend(10_000), ExecutionError);
    await refusedAsLocked(stale.release());
    // The new owner's lock is untouched.
    assert.equal(await redis.get(key), current.value);
    assert.ok((await redis.pttl(key)) > 10_000);
    await must(current.release());
  });

  test("using() extends the lock while the routine runs", async () => {
    const key = resource("using");
    const contender = new Redlock([connect()], { retryCount: 0 });
    // Extended when less than 2.5 s are left: about every 1.5 s, with a wide margin
    // for a slow extension on a busy machine.
    const duration = 4_000;
    const settings = { automaticExtensionThreshold: 2_500 };
    const seen = new Set();

    const result = await must(
      redlock.using([key], duration, settings, async (signal) => {
        // Run for well over the lock's duration; each check is a point where the lease
        // would have run out without the automatic extensions.
        const until = Date.now() + 2.5 * duration;
        while (Date.now() < until) {
          await sleep(250);
          assert.equal(signal.aborted, false, `extension failed: ${signal.error}`);
          const value = await redis.get(key);
          assert.ok(value, "the lock ran out while the routine ran");
          seen.add(value);
          await refusedAsLocked(contender.acquire([key], duration));
        }
        return "done";
      }),
    );
    assert.equal(result, "done");
    assert.equal(seen.size, 1, "the lock changed hands while the routine ran");
    // using() released the lock when the routine returned.
    assert.equal(await redis.exists(key), 0);
  });

  test("falls back to EVAL after SCRIPT FLUSH", async () => {
    const key = resource("flush");
    await must((await must(redlock.acquire([key], 10_000))).release());
    const { acquireScript, releaseScript } = redlock.scripts;
    assert.deepEqual(await redis.script("EXISTS", acquireScript.hash, releaseScript.hash), [1, 1]);

    // EVALSHA gets NOSCRIPT, and redlock sends the script itself with EVAL.
    assert.equal(await redis.script("FLUSH"), "OK");
    assert.deepEqual(await redis.script("EXISTS", acquireScript.hash, releaseScript.hash), [0, 0]);
    const lock = await must(redlock.acquire([key], 10_000));
    assert.equal(await redis.get(key), lock.value);
    await must(lock.release());
    assert.equal(await redis.exists(key), 0);
    // EVAL cached the scripts, as Redis does, so EVALSHA works again.
    assert.deepEqual(await redis.script("EXISTS", acquireScript.hash, releaseScript.hash), [1, 1]);
  });

  test("using() releases the lock when the routine throws", async () => {
    const key = resource("using-throws");
    await assert.rejects(
      redlock.using([key], 5_000, async () => {
        assert.ok(await redis.exists(key));
        throw new Error("routine failed");
      }),
      /routine failed/,
    );
    assert.equal(await redis.exists(key), 0);
  });
});

describe("redlock contention between two clients", () => {
  test("the second client gets the lock when the first releases it", async () => {
    const key = resource("handover");
    const first = new Redlock([connect()], { retryCount: 0 });
    const second = new Redlock([connect()], {
      retryCount: 400,
      retryDelay: 50,
      retryJitter: 25,
    });
    const held = await must(first.acquire([key], 30_000));
    await refusedAsLocked(new Redlock([connect()], { retryCount: 0 }).acquire([key], 30_000));

    const waiting = second.acquire([key], 30_000);
    let got = false;
    waiting.then(
      () => (got = true),
      () => {},
    );
    await sleep(500);
    assert.equal(got, false, "the second client got a lock that was held");
    await must(held.release());

    const lock = await must(waiting);
    assert.equal(await redis.get(key), lock.value);
    assert.notEqual(lock.value, held.value);
    await must(lock.release());
  });

  test("two clients, 2 x 25 increments under the lock", async () => {
    const key = resource("counter");
    const counter = `${key}:count`;
    const rounds = 25;
    let inside = 0;
    let overlaps = 0;

    async function worker() {
      const client = connect();
      const locks = new Redlock([client], {
        retryCount: 2_000,
        retryDelay: 20,
        retryJitter: 10,
      });
      for (let round = 0; round < rounds; round++) {
        await must(
          locks.using([key], 30_000, async () => {
            inside += 1;
            if (inside !== 1) overlaps += 1;
            // A read-modify-write that only the lock keeps from losing updates.
            const value = Number.parseInt((await client.get(counter)) ?? "0", 10);
            await client.set(counter, String(value + 1));
            inside -= 1;
          }),
        );
      }
    }

    await Promise.all([worker(), worker()]);
    assert.equal(overlaps, 0);
    assert.equal(await redis.get(counter), String(2 * rounds));
    assert.equal(await redis.exists(key), 0);
  });
});
