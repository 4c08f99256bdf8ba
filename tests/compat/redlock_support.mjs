// What the redlock suites share: turning a failed redlock call into the servers' answers.

import assert from "node:assert/strict";

import { ExecutionError } from "redlock";

/** The server errors behind a redlock ExecutionError, for failure messages. */
export async function why(error) {
  if (!(error instanceof ExecutionError)) {
    return String(error?.stack ?? error);
  }
  const reasons = new Set();
  for (const attempt of error.attempts ?? []) {
    const stats = await attempt;
    for (const cause of stats.votesAgainst.values()) {
      reasons.add(`${cause.name}: ${cause.message}`);
    }
  }
  return `${error.message} (${[...reasons].join("; ") || "no votes against"})`;
}

/** Runs a redlock call that must succeed; on failure, says what the servers answered. */
export async function must(promise) {
  try {
    return await promise;
  } catch (error) {
    assert.fail(await why(error));
  }
}
