// The tensor helpers of src/index.ts, offline: round trips for every dtype, the byte layout
// against values written by hand, and the errors of bad input.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  type DecodedTensor,
  type Dtype,
  fromB64Tensor,
  fromTensor,
  inference,
  inferOutputs,
  inferRequest,
  toB64Tensor,
  toInferInput,
  toTensor,
  type TypedArray,
} from "../src/index.js";

const SAMPLES: [Dtype, TypedArray][] = [
  ["bool", Uint8Array.from([1, 0, 0, 1, 1, 0])],
  ["uint8", Uint8Array.from([0, 1, 127, 128, 200, 255])],
  ["int8", Int8Array.from([-128, -1, 0, 1, 64, 127])],
  ["int16", Int16Array.from([-32768, -2, 0, 3, 1000, 32767])],
  ["int32", Int32Array.from([-(2 ** 31), -5, 0, 7, 65536, 2 ** 31 - 1])],
  ["int64", BigInt64Array.from([-(2n ** 63n), -9n, 0n, 11n, 2n ** 40n, 2n ** 63n - 1n])],
  ["float32", Float32Array.from([-1.5, 0, 0.1, 3.25, 1e30, Number.NEGATIVE_INFINITY])],
  ["float64", Float64Array.from([-1.5, 0, 0.1, 3.25, 1e300, Number.NaN])],
];

function same(decoded: DecodedTensor, array: TypedArray, dtype: Dtype, shape: number[]): void {
  assert.equal(decoded.dtype, dtype);
  assert.deepEqual(decoded.shape, shape);
  assert.equal(decoded.data.constructor, array.constructor);
  assert.deepEqual(
    Array.from(decoded.data as ArrayLike<unknown>),
    Array.from(array as ArrayLike<unknown>),
  );
}

test("tensor helpers: gRPC, base64 and OIP tensors round-trip every dtype", () => {
  for (const [dtype, array] of SAMPLES) {
    const tensor = toTensor(array, [2, 3], dtype);
    assert.equal(tensor.dtype, dtype);
    assert.equal(tensor.data.byteLength, array.byteLength);
    same(fromTensor(tensor), array, dtype, [2, 3]);
    same(fromB64Tensor(toB64Tensor(array, [3, 2], dtype)), array, dtype, [3, 2]);
  }
});

test("tensor helpers: bytes are little-endian C order", () => {
  const tensor = toTensor(Float32Array.from([1, -2]), [2]);
  assert.deepEqual([...tensor.data], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
  const b64 = toB64Tensor(Float32Array.from([0.5, -1]), [2]);
  assert.deepEqual(b64, { shape: [2], dtype: "float32", b64: "AAAAPwAAgL8=" }); // wire.py's example
  const ints = toTensor(BigInt64Array.from([258n]), [1]);
  assert.deepEqual([...ints.data], [2, 1, 0, 0, 0, 0, 0, 0]);
  // an unaligned view into a larger buffer (as protobuf decoding gives) decodes correctly
  const buffer = Buffer.alloc(9);
  buffer.writeFloatLE(3.5, 1);
  buffer.writeFloatLE(-0.25, 5);
  const decoded = fromTensor({ shape: [2], dtype: "float32", data: buffer.subarray(1) });
  assert.deepEqual(Array.from(decoded.data as Float32Array), [3.5, -0.25]);
});

test("tensor helpers: bad shapes, dtypes and byte counts fail with what was expected", () => {
  const array = Float32Array.from([1, 2, 3]);
  assert.throws(() => toTensor(array, [2, 2]), /expected 4 elements for shape \[2, 2\], got 3/);
  assert.throws(() => toTensor(array, [-3]), /shape: expected non-negative integers/);
  assert.throws(
    () => toTensor(array, [3], "int32"),
    /dtype: expected float32 for this array, got int32/,
  );
  assert.throws(
    () => fromTensor({ shape: [2], dtype: "float32", data: Buffer.alloc(7) }),
    /expected 8 bytes for shape \[2\] of float32, got 7/,
  );
  assert.throws(
    () => fromTensor({ shape: [1], dtype: "complex64", data: Buffer.alloc(8) }),
    /dtype: expected one of .*, got "complex64"/,
  );
});

test("tensor helpers: OIP inputs carry raw bytes; outputs decode by datatype", () => {
  const features = toInferInput("features", Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const request = inferRequest("tiny", [features], ["logits"]);
  assert.equal(request.modelName, "tiny");
  assert.deepEqual(request.inputs[0], {
    name: "features",
    datatype: "FP32",
    shape: [2, 3],
    parameters: {},
    contents: undefined,
  });
  assert.deepEqual(
    request.outputs.map((o) => o.name),
    ["logits"],
  );
  assert.equal(request.rawInputContents[0]?.byteLength, 24);
  // the generated codec round-trips it
  const again = inference.ModelInferRequest.decode(
    inference.ModelInferRequest.encode(request).finish(),
  );
  assert.deepEqual(again.inputs, request.inputs);

  const response = inference.ModelInferResponse.fromPartial({
    outputs: [
      { name: "decisions", datatype: "INT64", shape: [2] },
      { name: "labels", datatype: "BYTES", shape: [1] },
      { name: "probabilities", datatype: "FP32", shape: [2, 1] },
    ],
    rawOutputContents: [
      toTensor(BigInt64Array.from([2n, 0n]), [2]).data,
      Buffer.from([3, 0, 0, 0, 0x63, 0x61, 0x74]),
      toTensor(Float32Array.from([0.25, 0.75]), [2, 1]).data,
    ],
  });
  const outputs = inferOutputs(response);
  assert.deepEqual([...outputs.keys()], ["decisions", "probabilities"]); // BYTES left out
  assert.deepEqual(Array.from(outputs.get("decisions")?.data as BigInt64Array), [2n, 0n]);
  assert.deepEqual(outputs.get("probabilities")?.shape, [2, 1]);
});
