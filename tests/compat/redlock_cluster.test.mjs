// Redlock pointed at the nodes of ONE raftlock cluster, as a user coming from Redlock
// deploys it: the `redlock` package (v5) and redis-semaphore's RedlockMutex, unmodified,
// on ioredis, one client per node. Every copy of a request a client sends to the nodes
// must be answered alike (docs/LOCKS.md, "Redlock on the nodes of one cluster"), so the
// client reaches its majority, and two clients must never hold the lock at once.
//
// `tests/compat.rs` starts a 3-node cluster and runs this file with `node --test`,
// passing the nodes' ports in RAFTLOCK_PORTS (comma-separated). By hand:
//
//     (cd tests/compat && npm ci && RAFTLOCK_PORTS=7001,7002,7003 node --test redlock_cluster.test.mjs)

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import Redis from "ioredis";
import Redlock, { ExecutionError, ResourceLockedError } from "redlock";

import { must } from "./redlock_support.mjs";
import semaphore from "redis-semaphore";

const { RedlockMutex } = semaphore;

const HOST = process.env.RAFTLOCK_HOST ?? "127.0.0.1";
const PORTS = (process.env.RAFTLOCK_PORTS ?? "")
  .split(",")
  .map((port) => Number.parseInt(port, 10));
if (PORTS.length < 3 || !PORTS.every(Number.isInteger)) {
  throw new Error("RAFTLOCK_PORTS must name the client ports of a cluster's nodes");
}

const EVENTUALLY_MS = 30_000;
const clients = [];

/** One ioredis client per node, as a Redlock deployment has one per server. */
function perNode() {
  return PORTS.map((port) => {
    const client = new Redis({
      host: HOST,
      port,
      connectTimeout: 10_000,
      commandTimeout: EVENTUALLY_MS,
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => (times > 5 ? null : 200),
    });
    clients.push(client);
    return client;
  });
}

function resource(label) {
  return `compat:redlock-cluster:${label}:${randomUUID()}`;
}

after(async () => {
  await Promise.all(clients.map((client) => client.quit().catch(() => {})));
});

describe("redlock (v5) on every node of one cluster", () => {
  test("acquires with a majority of the nodes, extends and releases", async () => {
    // Retries span a leader change (a second or two), as a deployment's would.
    const redlock = new Redlock(perNode(), { retryCount: 20, retryDelay: 200 });
    const name = resource("cycle");
    const lock = await must(redlock.acquire([name], 10_000));
    const [first, second, third] = perNode();
    for (const node of [first, second, third]) {
      assert.equal(await node.get(name), lock.value, "every node reads the one lock");
    }
    const extended = await must(lock.extend(20_000));
    assert.ok(extended.expiration > lock.expiration);
    const pttl = await first.pttl(name);
    assert.ok(pttl > 10_000 && pttl <= 20_000, `PTTL after extend: ${pttl}`);
    await must(extended.release());
    assert.equal(await second.exists(name), 0);
  });

  test("a second client is refused while the lock is held, and gets it after", async () => {
    const holder = new Redlock(perNode(), { retryCount: 20, retryDelay: 200 });
    const rival = new Redlock(perNode(), { retryCount: 0 });
    const patient = new Redlock(perNode(), { retryCount: 20, retryDelay: 200 });
    const name = resource("rival");
    const lock = await must(holder.acquire([name], 10_000));
    await assert.rejects(rival.acquire([name], 10_000), (error) => {
      assert.ok(
        error instanceof ExecutionError || error instanceof ResourceLockedError,
        String(error)
      );
      return true;
    });
    await must(lock.release());
    const taken = await must(patient.acquire([name], 10_000));
    await must(taken.release());
  });

  test("clients contending for one lock never hold it at the same time", async () => {
    const name = resource("contended");
    const until = Date.now() + 4_000;
    let holder = null;
    let sections = 0;
    const worker = async (id) => {
      const redlock = new Redlock(perNode(), {
        retryCount: 100,
        retryDelay: 50,
        retryJitter: 50,
      });
      while (Date.now() < until) {
        let lock;
        try {
          lock = await redlock.acquire([name], 5_000);
        } catch (error) {
          if (error instanceof ExecutionError) {
            continue;
          }
          throw error;
        }
        assert.equal(holder, null, `worker ${id} was granted the lock while ${holder} held it`);
        holder = id;
        await sleep(10);
        assert.ok(lock.expiration > Date.now(), "the section ended within the lock's validity");
        holder = null;
        sections += 1;
        await must(lock.release());
      }
    };
    await Promise.all([1, 2, 3, 4].map(worker));
    assert.ok(sections > 4, `only ${sections} critical sections ran`);
  });
});

describe("redis-semaphore's RedlockMutex on every node of one cluster", () => {
  test("acquires, refreshes, excludes a second mutex and releases", async () => {
    const name = resource("mutex");
    const options = { lockTimeout: 2_000, acquireTimeout: 5_000, retryInterval: 50 };
    const mutex = new RedlockMutex(perNode(), name, options);
    await mutex.acquire();
    assert.ok(mutex.isAcquired);
    const rival = new RedlockMutex(perNode(), name, { ...options, acquireTimeout: 300 });
    assert.equal(await rival.tryAcquire(), false);
    // Past the lock timeout: the mutex's refresh has kept it.
    await sleep(2_500);
    assert.ok(mutex.isAcquired, "refreshed");
    assert.equal(await rival.tryAcquire(), false);
    await mutex.release();
    const next = new RedlockMutex(perNode(), name, options);
    await next.acquire();
    assert.ok(next.isAcquired);
    await next.release();
  });
});
