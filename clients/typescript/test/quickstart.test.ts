// examples/quickstart.ts (the README's TypeScript example), compiled and run as a user runs
// it, in its own node process against the live server; what it prints is checked against a
// focal loss computed here.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { asFloat32, assertClose, mean, serverEnv, softmax, TIMEOUT_MS } from "./support.js";

const EXAMPLE = fileURLToPath(new URL("../examples/quickstart.js", import.meta.url));

/** The example's batch, written out again here. */
const LOGITS = [
  [2.0, -1.0, 0.5],
  [0.1, 0.3, -0.2],
];
const TARGETS = [0, 2];

/** Softmax focal loss, mean over samples of -(1 - p_t)^gamma log p_t. */
function focal(rows: readonly (readonly number[])[], targets: readonly number[], gamma: number) {
  return mean(
    rows.map((row, i) => {
      const p = softmax(row)[targets[i] ?? -1] ?? Number.NaN;
      return -((1 - p) ** gamma) * Math.log(p);
    }),
  );
}

/** What the example prints, run with `env` (undefined: unset) and without this runner's
 * NODE_OPTIONS (its reporters) and NODE_TEST_CONTEXT. */
async function runExample(env: Record<string, string | undefined>): Promise<string> {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete merged.NODE_OPTIONS;
  delete merged.NODE_TEST_CONTEXT;
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  const { stdout } = await promisify(execFile)(process.execPath, [EXAMPLE], {
    env: merged,
    timeout: TIMEOUT_MS,
  });
  return stdout;
}

function printed(stdout: string, what: string): string {
  const match = new RegExp(`^${what} (\\S+)$`, "m").exec(stdout);
  assert.ok(match?.[1], `expected a line "${what} <value>" in the example's output:\n${stdout}`);
  return match[1];
}

test(
  "example: quickstart prints the focal loss over REST and gRPC, and a model's prediction",
  { timeout: TIMEOUT_MS },
  async () => {
    const { httpUrl, grpcTarget, model } = serverEnv();
    const stdout = await runExample({
      LOSSSERVE_HTTP_URL: httpUrl,
      LOSSSERVE_GRPC_TARGET: grpcTarget,
      LOSSSERVE_MODEL: model,
    });
    const expected = focal(asFloat32(LOGITS), TARGETS, 2);
    const restValue = Number(printed(stdout, "rest focal"));
    const grpcValue = Number(printed(stdout, "grpc focal"));
    assertClose([restValue], [expected], { rtol: 1e-5, atol: 0, what: "rest focal" });
    assertClose([grpcValue], [expected], { rtol: 1e-5, atol: 0, what: "grpc focal" });
    assertClose([grpcValue], [restValue], { rtol: 1e-6, atol: 0, what: "grpc vs rest" });

    const metadata = (await (await fetch(`${httpUrl}/v2/models/${model}`)).json()) as {
      parameters: { labels: string };
    };
    const labels = JSON.parse(metadata.parameters.labels) as string[];
    const label = printed(stdout, "rest predict");
    assert.ok(labels.includes(label), `expected one of ${labels.join(", ")}, got ${label}`);
  },
);

test(
  "example: quickstart without LOSSSERVE_MODEL computes the losses and predicts nothing",
  { timeout: TIMEOUT_MS },
  async () => {
    const { httpUrl, grpcTarget } = serverEnv();
    const stdout = await runExample({
      LOSSSERVE_HTTP_URL: httpUrl,
      LOSSSERVE_GRPC_TARGET: grpcTarget,
      LOSSSERVE_MODEL: undefined,
    });
    assert.deepEqual(
      stdout
        .trim()
        .split("\n")
        .map((line) => line.split(" ").slice(0, 2).join(" ")),
      ["rest focal", "grpc focal"],
    );
  },
);
