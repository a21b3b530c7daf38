// The REST API through the generated openapi-fetch client, against a live server.

import assert from "node:assert/strict";
import { test } from "node:test";

import { type components, createRestClient, fromB64Tensor, toB64Tensor } from "../src/index.js";
import {
  asFloat32,
  assertClose,
  CLASSES,
  crossEntropy,
  crossEntropyGrad,
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

type ErrorBody = components["schemas"]["ErrorBody"];

function rest() {
  return createRestClient(serverEnv().httpUrl);
}

function assertErrorBody(body: unknown, code: string, message: RegExp): void {
  const error = (body as Partial<ErrorBody> | undefined)?.error;
  assert.ok(error, `expected {"error": {...}}, got ${JSON.stringify(body)}`);
  assert.equal(error.code, code);
  assert.match(error.message, message);
  assert.ok(
    Array.isArray(error.details),
    `error.details: expected a list, got ${JSON.stringify(error.details)}`,
  );
}

test(
  "REST: GET /losses lists the registry with each loss's params schema",
  { timeout: TIMEOUT_MS },
  async () => {
    const { data, error, response } = await rest().GET("/losses");
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    const names = data.losses.map((info) => info.name);
    for (const name of ["cross_entropy", "focal", "binary_cross_entropy"]) {
      assert.ok(names.includes(name), `expected ${name} among ${names.join(", ")}`);
    }
    assert.deepEqual(names, [...names].sort());
    const focal = data.losses.find((info) => info.name === "focal");
    assert.equal(typeof focal?.params_schema, "object");
    assert.ok(focal?.tasks.includes("multiclass"));
    assert.ok((focal?.formula.length ?? 0) > 0);
  },
);

test(
  "REST: POST /loss cross_entropy value and gradient match a reference (nested lists)",
  { timeout: TIMEOUT_MS },
  async () => {
    const { data, error, response } = await rest().POST("/loss", {
      body: {
        loss: "cross_entropy",
        logits: LOGITS,
        targets: TARGETS,
        reduction: "mean",
        return_grad: true,
      },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(typeof data === "object", `expected a JSON body, got ${JSON.stringify(data)}`);
    assert.equal(data.loss, "cross_entropy");
    assert.equal(data.reduction, "mean");
    assert.equal(typeof data.device, "string");
    assert.equal(data.hessian_diag, null);
    const logits = asFloat32(LOGITS);
    assert.equal(typeof data.value, "number");
    assertClose([data.value as number], [mean(crossEntropy(logits, TARGETS))], { what: "value" });
    assert.ok(
      Array.isArray(data.grad),
      `grad: expected nested lists, got ${JSON.stringify(data.grad)}`,
    );
    const grad = data.grad as (number | null)[][];
    assert.equal(grad.length, LOGITS.length);
    assertClose(
      grad.flat().map((v) => v ?? Number.NaN),
      crossEntropyGrad(logits, TARGETS).flat(),
      { what: "grad" },
    );
  },
);

test(
  "REST: POST /loss per-sample values and gradient in base64 tensors",
  { timeout: TIMEOUT_MS },
  async () => {
    const { data, error, response } = await rest().POST("/loss", {
      body: {
        loss: "cross_entropy",
        logits: toB64Tensor(flat(LOGITS), [LOGITS.length, CLASSES]),
        targets: toB64Tensor(BigInt64Array.from(TARGETS.map(BigInt)), [TARGETS.length]),
        reduction: "none",
        return_grad: true,
      },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(typeof data === "object", `expected a JSON body, got ${JSON.stringify(data)}`);
    const value = fromB64Tensor(data.value as components["schemas"]["B64Tensor"], "value");
    assert.equal(value.dtype, "float32");
    assert.deepEqual(value.shape, [LOGITS.length]);
    const logits = asFloat32(LOGITS);
    assertClose(value.data as Float32Array, crossEntropy(logits, TARGETS), { what: "value" });
    const grad = fromB64Tensor(data.grad as components["schemas"]["B64Tensor"], "grad");
    assert.deepEqual(grad.shape, [LOGITS.length, CLASSES]);
    // reduction "none": each sample's own gradient, softmax(z) - onehot(y), not divided by N
    const perSample = crossEntropyGrad(logits, TARGETS)
      .flat()
      .map((g) => g * LOGITS.length);
    assertClose(grad.data as Float32Array, perSample, { what: "grad" });
  },
);

test(
  "REST: POST /evaluate answers the loss, confusion and F1 computed here",
  { timeout: TIMEOUT_MS },
  async () => {
    const { data, error, response } = await rest().POST("/evaluate", {
      body: { logits: LOGITS, targets: TARGETS, loss: "cross_entropy" },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    const expected = multiclassMetrics(LOGITS, TARGETS, CLASSES);
    assert.equal(data.task, "multiclass");
    assert.equal(data.num_samples, LOGITS.length);
    assertClose([data.loss ?? Number.NaN], [mean(crossEntropy(asFloat32(LOGITS), TARGETS))], {
      what: "loss",
    });
    assert.deepEqual(data.confusion, expected.confusion);
    assert.deepEqual(
      data.per_class.map((m) => m.support),
      expected.perClass.map((m) => m.support),
    );
    assertClose(
      data.per_class.map((m) => m.f1),
      expected.perClass.map((m) => m.f1),
      { what: "f1" },
    );
    assertClose([data.macro_f1, data.micro_f1], [expected.macroF1, expected.microF1], {
      what: "macro/micro F1",
    });
  },
);

test(
  "REST: POST /models/{name}/predict answers labels and probabilities of the model",
  { timeout: TIMEOUT_MS },
  async () => {
    const { model } = serverEnv();
    // The model's input width and labels, and its raw outputs, from the Open Inference
    // Protocol routes, typed by the same OpenAPI document.
    const described = await rest().GET("/v2/models/{model_name}", {
      params: { path: { model_name: model } },
    });
    assert.equal(described.response.status, 200, JSON.stringify(described.error));
    assert.ok(described.data);
    const input = described.data.inputs[0];
    assert.ok(input, "the model has an input");
    const labels = JSON.parse(String(described.data.parameters["labels"])) as string[];
    const rows = featureRows(5, input.shape[1] ?? 0);

    const { data, error, response } = await rest().POST("/models/{model_name}/predict", {
      params: { path: { model_name: model } },
      body: { instances: rows },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    assert.equal(data.predictions.length, rows.length);

    const infer = await rest().POST("/v2/models/{model_name}/infer", {
      params: { path: { model_name: model } },
      body: {
        inputs: [
          {
            name: input.name,
            datatype: "FP32",
            shape: [rows.length, rows[0]?.length ?? 0],
            data: rows.flat(),
          },
        ],
      },
    });
    assert.equal(infer.response.status, 200, JSON.stringify(infer.error));
    // JSON here; the document also allows the binary extension's octet-stream answer
    assert.ok(infer.data && typeof infer.data !== "string", "a JSON answer");
    const outputs = infer.data.outputs;
    const output = (name: string): number[] =>
      (outputs.find((o) => o.name === name)?.data ?? []) as number[];
    const logits = output("logits");
    data.predictions.forEach((prediction, i) => {
      assert.deepEqual(Object.keys(prediction.probabilities).sort(), [...labels].sort());
      const probabilities = labels.map((label) => prediction.probabilities[label] ?? Number.NaN);
      const row = logits.slice(i * labels.length, (i + 1) * labels.length);
      assertClose(probabilities, softmax(row), { what: `predictions[${i}].probabilities` });
      assert.deepEqual(prediction.labels, [labels[output("decisions")[i] ?? -1]]);
    });
  },
);

test(
  "REST: an unknown loss answers 400 with the error body naming the field",
  { timeout: TIMEOUT_MS },
  async () => {
    const { data, error, response } = await rest().POST("/loss", {
      body: { loss: "no_such_loss", logits: LOGITS, targets: TARGETS },
    });
    assert.equal(response.status, 400);
    assert.equal(data, undefined);
    assertErrorBody(error, "INVALID_ARGUMENT", /^loss: .*no_such_loss.*cross_entropy/);
  },
);

test(
  "REST: predict with an unknown model answers 404 NOT_FOUND",
  { timeout: TIMEOUT_MS },
  async () => {
    const { error, response } = await rest().POST("/models/{model_name}/predict", {
      params: { path: { model_name: "no-such-model" } },
      body: { instances: [[0, 0, 0, 0]] },
    });
    assert.equal(response.status, 404);
    assertErrorBody(error, "NOT_FOUND", /no-such-model/);
  },
);
