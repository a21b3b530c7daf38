// What the live-server tests share: where the server is, a small batch, and reference
// values computed here, in float64, independently of the server (softmax cross-entropy,
// its gradient, confusion counts and F1).

import assert from "node:assert/strict";

export interface ServerEnv {
  httpUrl: string;
  grpcTarget: string;
  model: string;
}

/** The live server from LOSSSERVE_HTTP_URL, LOSSSERVE_GRPC_TARGET and LOSSSERVE_MODEL. */
export function serverEnv(): ServerEnv {
  const names = ["LOSSSERVE_HTTP_URL", "LOSSSERVE_GRPC_TARGET", "LOSSSERVE_MODEL"] as const;
  const missing = names.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `set ${missing.join(", ")}: these tests run against a live lossserve server ` +
        "(tests/contract/test_typescript_client.py starts one and sets them)",
    );
  }
  return {
    httpUrl: (process.env.LOSSSERVE_HTTP_URL ?? "").replace(/\/+$/, ""),
    grpcTarget: process.env.LOSSSERVE_GRPC_TARGET ?? "",
    model: process.env.LOSSSERVE_MODEL ?? "",
  };
}

/** Every test's time limit, and the gRPC deadline of each call. */
export const TIMEOUT_MS = 60_000;

export function deadline(): Date {
  return new Date(Date.now() + TIMEOUT_MS);
}

/** A multiclass batch: 6 samples, 3 classes, every class present, argmax wrong twice. */
export const LOGITS: number[][] = [
  [2.0, -1.0, 0.5],
  [0.1, 0.2, -0.3],
  [-1.0, 0.0, 1.5],
  [0.3, 2.5, -0.7],
  [1.25, 1.0, -2.0],
  [-0.5, 0.75, 0.25],
];
export const TARGETS: number[] = [0, 2, 2, 1, 1, 2];
export const CLASSES = 3;

export function flat(rows: readonly (readonly number[])[]): Float32Array {
  return Float32Array.from(rows.flat());
}

/** The batch's logits as float32 rounds them, as float64 rows (what the server sees). */
export function asFloat32(rows: readonly (readonly number[])[]): number[][] {
  return rows.map((row) => row.map((v) => Math.fround(v)));
}

export function softmax(row: readonly number[]): number[] {
  const max = Math.max(...row);
  const exps = row.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** Per-sample softmax cross-entropy: logsumexp(z) - z[y]. */
export function crossEntropy(
  rows: readonly (readonly number[])[],
  targets: readonly number[],
): number[] {
  return rows.map((row, i) => {
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    return lse - (row[targets[i] ?? -1] ?? Number.NaN);
  });
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** d mean(CE) / d logits = (softmax(z) - onehot(y)) / N. */
export function crossEntropyGrad(
  rows: readonly (readonly number[])[],
  targets: readonly number[],
): number[][] {
  return rows.map((row, i) =>
    softmax(row).map((p, c) => (p - (c === targets[i] ? 1 : 0)) / rows.length),
  );
}

export function argmax(row: readonly number[]): number {
  let best = 0;
  row.forEach((v, i) => {
    if (v > (row[best] ?? -Infinity)) best = i;
  });
  return best;
}

export interface Metrics {
  confusion: number[][];
  perClass: { label: number; support: number; precision: number; recall: number; f1: number }[];
  macroF1: number;
  microF1: number;
}

/** Multiclass metrics of predictions `argmax(z + offsets)`: confusion (row = true class), F1. */
export function multiclassMetrics(
  rows: readonly (readonly number[])[],
  targets: readonly number[],
  classes: number,
  offsets: readonly number[] = new Array<number>(classes).fill(0),
): Metrics {
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  rows.forEach((row, i) => {
    const predicted = argmax(row.map((v, c) => v + (offsets[c] ?? 0)));
    const truth = targets[i] ?? -1;
    const line = confusion[truth];
    if (line === undefined) throw new Error(`target ${truth} out of range`);
    line[predicted] = (line[predicted] ?? 0) + 1;
  });
  const cell = (r: number, c: number): number => confusion[r]?.[c] ?? 0;
  const perClass = Array.from({ length: classes }, (_, c) => {
    const tp = cell(c, c);
    let predicted = 0;
    let support = 0;
    for (let k = 0; k < classes; k++) {
      predicted += cell(k, c);
      support += cell(c, k);
    }
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label: c, support, precision, recall, f1 };
  });
  const correct = perClass.reduce((a, m, c) => a + cell(c, c), 0);
  return {
    confusion,
    perClass,
    macroF1: mean(perClass.map((m) => m.f1)),
    microF1: correct / rows.length,
  };
}

/** |actual - expected| <= atol + rtol * |expected|, elementwise, with the index in the message. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, what = "value" } = {},
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: expected ${expected.length} values, got ${actual.length}`,
  );
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] ?? Number.NaN;
    const e = expected[i] ?? Number.NaN;
    assert.ok(
      Math.abs(a - e) <= atol + rtol * Math.abs(e),
      `${what}[${i}]: expected ${e} (within ${atol} + ${rtol} * |expected|), got ${a}`,
    );
  }
}

/** Feature rows for a model with `width` inputs: deterministic, varied, float32-exact. */
export function featureRows(count: number, width: number): number[][] {
  return Array.from({ length: count }, (_, i) =>
    Array.from({ length: width }, (_, j) => Math.fround(Math.sin(1.7 * i + 0.9 * j + 0.3) * 2)),
  );
}
