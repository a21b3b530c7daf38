// The gRPC retry policy of createLossServiceClient, offline: a grpc-js server on 127.0.0.1
// answers ComputeLoss UNAVAILABLE on its first call and a response on the second, and the
// client must send the call again by itself, for a small request and for one of 2 MiB (the
// 8 MiB per-call retry buffer of GRPC_OPTIONS; grpc-js keeps only 1 MiB by default).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { type ClientOptions, type StatusObject, Server, ServerCredentials } from "@grpc/grpc-js";

import {
  createLossServiceClient,
  fromTensor,
  lossservice,
  type ServiceError,
  status,
  toTensor,
  unary,
} from "../src/index.js";

const TIMEOUT_MS = 30_000;
const LARGE_ELEMENTS = 512 * 1024; // float32 logits: 2 MiB

const server = new Server();
let target = "";

/** The server's calls to ComputeLoss since the last reset, with each request's logits bytes. */
let calls: number[] = [];
/** The status of the first call after a reset; every later call answers a response. */
let firstAnswer: status = status.UNAVAILABLE;

function reset(first: status): void {
  calls = [];
  firstAnswer = first;
}

function unimplemented(): Partial<StatusObject> {
  return { code: status.UNIMPLEMENTED, details: "not part of this test" };
}

const service: lossservice.LossServiceServer = {
  listLosses: (_call, callback) => callback(unimplemented()),
  computeLoss: (call, callback) => {
    calls.push(call.request.logits?.data.byteLength ?? 0);
    if (calls.length === 1) {
      callback({ code: firstAnswer, details: `attempt 1 answered ${status[firstAnswer]}` });
      return;
    }
    callback(
      null,
      lossservice.ComputeLossResponse.fromPartial({
        loss: call.request.loss,
        reduction: "mean",
        value: toTensor(Float32Array.of(calls.length), []),
        device: "cpu",
      }),
    );
  },
  computeLossChunked: (call) => call.emit("error", unimplemented()),
  streamEvaluate: (call) => call.emit("error", unimplemented()),
};

before(async () => {
  server.addService(lossservice.LossServiceService, service);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    });
  });
  target = `127.0.0.1:${port}`;
});

after(async () => {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 5_000);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
});

function request(elements: number): lossservice.ComputeLossRequest {
  return lossservice.ComputeLossRequest.fromPartial({
    loss: "cross_entropy",
    logits: toTensor(new Float32Array(elements).fill(0.25), [elements / 4, 4]),
    targets: toTensor(new BigInt64Array(elements / 4), [elements / 4]),
  });
}

/** ComputeLoss through a fresh client (closed afterwards): its response or its error. */
async function computeLoss(
  elements: number,
  options?: Partial<ClientOptions>,
): Promise<lossservice.ComputeLossResponse | ServiceError> {
  const client = createLossServiceClient(target, undefined, options);
  try {
    return await unary(client.computeLoss.bind(client), request(elements), {
      deadline: new Date(Date.now() + TIMEOUT_MS),
    });
  } catch (error) {
    return error as ServiceError;
  } finally {
    client.close();
  }
}

function assertAnswered(
  result: lossservice.ComputeLossResponse | ServiceError,
): asserts result is lossservice.ComputeLossResponse {
  assert.ok(
    !(result instanceof Error),
    `expected a response, got ${(result as ServiceError).code}: ${(result as ServiceError).details}`,
  );
}

function assertFailed(
  result: lossservice.ComputeLossResponse | ServiceError,
  code: status,
): asserts result is ServiceError {
  assert.ok(result instanceof Error, "expected the call to fail");
  assert.equal(result.code, code, `${result.code}: ${result.details}`);
  assert.equal(result.details, `attempt 1 answered ${status[code]}`);
}

test(
  "a small call answered UNAVAILABLE is sent again and answered",
  {
    timeout: TIMEOUT_MS,
  },
  async () => {
    reset(status.UNAVAILABLE);
    const result = await computeLoss(24);
    assertAnswered(result);
    assert.equal(calls.length, 2, "the server saw exactly 2 attempts");
    assert.deepEqual(calls, [24 * 4, 24 * 4]);
    assert.equal(result.loss, "cross_entropy");
    assert.ok(result.value);
    assert.deepEqual(Array.from(fromTensor(result.value).data as Float32Array), [2]);
  },
);

test(
  "a 2 MiB call answered UNAVAILABLE is sent again whole (8 MiB retry buffer)",
  {
    timeout: TIMEOUT_MS,
  },
  async () => {
    reset(status.UNAVAILABLE);
    const result = await computeLoss(LARGE_ELEMENTS);
    assertAnswered(result);
    assert.equal(calls.length, 2, "the server saw exactly 2 attempts");
    assert.deepEqual(calls, [LARGE_ELEMENTS * 4, LARGE_ELEMENTS * 4]);
    assert.ok(result.value);
    assert.deepEqual(Array.from(fromTensor(result.value).data as Float32Array), [2]);
  },
);

test(
  "with a 16 KiB retry buffer the same 2 MiB call is not sent again",
  {
    timeout: TIMEOUT_MS,
  },
  async () => {
    reset(status.UNAVAILABLE);
    const result = await computeLoss(LARGE_ELEMENTS, {
      "grpc.per_rpc_retry_buffer_size": 16 * 1024,
    });
    assertFailed(result, status.UNAVAILABLE);
    assert.equal(calls.length, 1, "the server saw 1 attempt");

    // while a small call on such a client still fits its buffer and is retried
    reset(status.UNAVAILABLE);
    const small = await computeLoss(24, { "grpc.per_rpc_retry_buffer_size": 16 * 1024 });
    assertAnswered(small);
    assert.equal(calls.length, 2);
  },
);

test("a call answered INVALID_ARGUMENT is not sent again", { timeout: TIMEOUT_MS }, async () => {
  reset(status.INVALID_ARGUMENT);
  const result = await computeLoss(24);
  assertFailed(result, status.INVALID_ARGUMENT);
  assert.equal(calls.length, 1, "the server saw 1 attempt");
});
