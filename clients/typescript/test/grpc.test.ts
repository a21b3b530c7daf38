// lossserve.v1.LossService and inference.GRPCInferenceService through the generated
// grpc-js clients, against a live server.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import {
  createInferenceClient,
  createLossServiceClient,
  fromTensor,
  inference,
  inferOutputs,
  inferRequest,
  lossservice,
  type ServiceError,
  status,
  toInferInput,
  toTensor,
  unary,
} from "../src/index.js";
import {
  asFloat32,
  assertClose,
  CLASSES,
  crossEntropy,
  crossEntropyGrad,
  deadline,
  featureRows,
  flat,
  LOGITS,
  mean,
  multiclassMetrics,
  serverEnv,
  softmax,
  TARGETS,
  TIMEOUT_MS,
} from "./support.js";

let losses: lossservice.LossServiceClient | undefined;
let models: inference.GRPCInferenceServiceClient | undefined;

function lossClient(): lossservice.LossServiceClient {
  losses ??= createLossServiceClient(serverEnv().grpcTarget);
  return losses;
}

function inferenceClient(): inference.GRPCInferenceServiceClient {
  models ??= createInferenceClient(serverEnv().grpcTarget);
  return models;
}

after(() => {
  losses?.close();
  models?.close();
});

async function rejection(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  assert.fail("expected the call to fail");
}

function targetsTensor(targets: readonly number[]): lossservice.Tensor {
  return toTensor(BigInt64Array.from(targets.map(BigInt)), [targets.length]);
}

test(
  "gRPC: ListLosses lists the registry with each loss's params schema",
  { timeout: TIMEOUT_MS },
  async () => {
    const client = lossClient();
    const response = await unary(client.listLosses.bind(client), {}, { deadline: deadline() });
    const names = response.losses.map((info) => info.name);
    for (const name of ["cross_entropy", "focal", "binary_cross_entropy"]) {
      assert.ok(names.includes(name), `expected ${name} among ${names.join(", ")}`);
    }
    const focal = response.losses.find((info) => info.name === "focal");
    assert.ok(focal);
    const schema = JSON.parse(focal.paramsSchema) as { properties?: Record<string, unknown> };
    assert.equal(typeof schema.properties, "object");
    assert.ok(focal.tasks.includes("multiclass"));
  },
);

test(
  "gRPC: ComputeLoss cross_entropy value and gradient match a reference",
  { timeout: TIMEOUT_MS },
  async () => {
    const client = lossClient();
    const request = lossservice.ComputeLossRequest.fromPartial({
      loss: "cross_entropy",
      logits: toTensor(flat(LOGITS), [LOGITS.length, CLASSES]),
      targets: targetsTensor(TARGETS),
      reduction: "mean",
      returnGrad: true,
    });
    const response = await unary(client.computeLoss.bind(client), request, {
      deadline: deadline(),
    });
    assert.equal(response.loss, "cross_entropy");
    assert.equal(response.reduction, "mean");
    assert.ok(response.device.length > 0);
    assert.equal(response.hessianDiag, undefined);
    assert.ok(response.value && response.grad);
    const value = fromTensor(response.value, "value");
    assert.equal(value.dtype, "float32");
    assert.deepEqual(value.shape, []);
    const logits = asFloat32(LOGITS);
    assertClose(value.data as Float32Array, [mean(crossEntropy(logits, TARGETS))], {
      what: "value",
    });
    const grad = fromTensor(response.grad, "grad");
    assert.deepEqual(grad.shape, [LOGITS.length, CLASSES]);
    assertClose(grad.data as Float32Array, crossEntropyGrad(logits, TARGETS).flat(), {
      what: "grad",
    });
  },
);

test(
  "gRPC: StreamEvaluate answers each batch with running metrics, then the thresholds",
  { timeout: TIMEOUT_MS },
  async () => {
    const batches = [
      [0, 2],
      [2, 4],
      [4, 6],
    ] as const;
    const call = lossClient().streamEvaluate({ deadline: deadline() });
    const updates = call[Symbol.asyncIterator]() as AsyncIterator<lossservice.EvaluateUpdate>;
    const logits = asFloat32(LOGITS);
    try {
      for (const [index, [start, end]] of batches.entries()) {
        call.write(
          lossservice.EvaluateBatch.fromPartial({
            logits: toTensor(flat(LOGITS.slice(start, end)), [end - start, CLASSES]),
            targets: targetsTensor(TARGETS.slice(start, end)),
            loss: index === 0 ? "cross_entropy" : "",
          }),
        );
        // the running update comes back before the next batch is even sent
        const next = await updates.next();
        assert.equal(next.done, false, `the stream ended before the update of batch ${index + 1}`);
        const update = next.value;
        assert.equal(update.batches, index + 1);
        assert.equal(update.final, false);
        assert.equal(update.thresholds, undefined);
        const seen = multiclassMetrics(LOGITS.slice(0, end), TARGETS.slice(0, end), CLASSES);
        assert.equal(update.metrics?.numSamples, end);
        assert.deepEqual(
          update.metrics?.confusion.map((row) => row.counts),
          seen.confusion,
        );
      }
      call.end();
      const last = await updates.next();
      assert.equal(last.done, false, "the stream ended without the final update");
      const final = last.value;
      assert.equal(final.final, true);
      assert.equal(final.batches, batches.length);

      const expected = multiclassMetrics(LOGITS, TARGETS, CLASSES);
      const metrics = final.metrics;
      assert.ok(metrics);
      assert.equal(metrics.task, "multiclass");
      assert.equal(metrics.numSamples, LOGITS.length);
      assert.deepEqual(
        metrics.confusion.map((row) => row.counts),
        expected.confusion,
      );
      assertClose([metrics.macroF1, metrics.microF1], [expected.macroF1, expected.microF1], {
        what: "F1",
      });
      assertClose([metrics.loss ?? Number.NaN], [mean(crossEntropy(logits, TARGETS))], {
        what: "loss",
      });

      const thresholds = final.thresholds;
      assert.ok(thresholds?.values && thresholds.before && thresholds.after);
      assert.equal(thresholds.task, "multiclass");
      assert.equal(thresholds.kind, "offsets");
      const offsets = Array.from(
        fromTensor(thresholds.values, "thresholds.values").data as Float32Array,
      );
      assert.equal(offsets.length, CLASSES);
      // "before" is plain argmax; "after" is argmax(logits + offsets), recomputed here
      assertClose([thresholds.before.macroF1], [expected.macroF1], { what: "before.macro_f1" });
      const fitted = multiclassMetrics(logits, TARGETS, CLASSES, offsets);
      assert.deepEqual(
        thresholds.after.confusion.map((row) => row.counts),
        fitted.confusion,
      );
      assertClose([thresholds.after.macroF1], [fitted.macroF1], { what: "after.macro_f1" });
      assert.ok(thresholds.after.macroF1 >= thresholds.before.macroF1, "fitting lowered macro F1");

      const end = await updates.next();
      assert.equal(end.done, true, "expected the stream to end after the final update");
    } finally {
      call.cancel();
    }
  },
);

test(
  "gRPC: ModelInfer answers logits, softmax probabilities and decisions",
  { timeout: TIMEOUT_MS },
  async () => {
    const { model } = serverEnv();
    const client = inferenceClient();
    const metadata = await unary(
      client.modelMetadata.bind(client),
      { name: model, version: "" },
      { deadline: deadline() },
    );
    const input = metadata.inputs[0];
    assert.ok(input, "the model has an input");
    assert.equal(input.datatype, "FP32");
    const width = input.shape[1] ?? 0;
    const labels = JSON.parse(metadata.parameters.labels?.stringParam ?? "[]") as string[];
    assert.ok(
      labels.length > 1,
      `expected the model's labels, got ${JSON.stringify(metadata.parameters)}`,
    );

    const rows = featureRows(5, width);
    const request = inferRequest(model, [
      toInferInput(input.name, flat(rows), [rows.length, width]),
    ]);
    const response = await unary(client.modelInfer.bind(client), request, { deadline: deadline() });
    assert.equal(response.modelName, model);
    const outputs = inferOutputs(response);
    const logits = outputs.get("logits");
    const probabilities = outputs.get("probabilities");
    const decisions = outputs.get("decisions");
    assert.ok(
      logits && probabilities && decisions,
      `outputs: got ${[...outputs.keys()].join(", ")}`,
    );
    assert.deepEqual(logits.shape, [rows.length, labels.length]);
    assert.deepEqual(probabilities.shape, [rows.length, labels.length]);
    assert.equal(decisions.dtype, "int64");
    const z = Array.from(logits.data as Float32Array);
    const expected = rows.flatMap((_, i) =>
      softmax(z.slice(i * labels.length, (i + 1) * labels.length)),
    );
    assertClose(probabilities.data as Float32Array, expected, { what: "probabilities" });
    for (const decision of decisions.data as BigInt64Array) {
      assert.ok(
        decision >= 0n && decision < BigInt(labels.length),
        `decision ${decision} out of range`,
      );
    }
  },
);

test(
  "gRPC: an unknown loss fails INVALID_ARGUMENT naming the field, as REST does",
  { timeout: TIMEOUT_MS },
  async () => {
    const client = lossClient();
    const request = lossservice.ComputeLossRequest.fromPartial({
      loss: "no_such_loss",
      logits: toTensor(flat(LOGITS), [LOGITS.length, CLASSES]),
      targets: targetsTensor(TARGETS),
    });
    const error = await rejection(
      unary(client.computeLoss.bind(client), request, { deadline: deadline() }),
    );
    assert.equal(error.code, status.INVALID_ARGUMENT, `${error.code}: ${error.details}`);
    assert.match(error.details, /^loss: .*no_such_loss.*cross_entropy/);
    assert.deepEqual(error.metadata.get("lossserve-error-code"), ["INVALID_ARGUMENT"]);

    const { httpUrl } = serverEnv();
    const rest = await fetch(`${httpUrl}/loss`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ loss: "no_such_loss", logits: LOGITS, targets: TARGETS }),
    });
    const body = (await rest.json()) as { error: { message: string } };
    assert.equal(error.details, body.error.message, "gRPC and REST answer the same message");

    const missing = lossservice.ComputeLossRequest.fromPartial({
      loss: "cross_entropy",
      targets: targetsTensor(TARGETS),
    });
    const second = await rejection(
      unary(client.computeLoss.bind(client), missing, { deadline: deadline() }),
    );
    assert.equal(second.code, status.INVALID_ARGUMENT);
    assert.equal(second.details, "logits: required field missing");
  },
);

test("gRPC: ModelInfer on an unknown model fails NOT_FOUND", { timeout: TIMEOUT_MS }, async () => {
  const client = inferenceClient();
  const request = inferRequest("no-such-model", [
    toInferInput("features", new Float32Array(4), [1, 4]),
  ]);
  const error = await rejection(
    unary(client.modelInfer.bind(client), request, { deadline: deadline() }),
  );
  assert.equal(error.code, status.NOT_FOUND, `${error.code}: ${error.details}`);
  assert.match(error.details, /no-such-model/);
});
