/**
 * The lossserve client for TypeScript: a thin layer over the generated code in ./generated
 * (openapi-typescript + openapi-fetch for REST, ts-proto + @grpc/grpc-js for gRPC).
 *
 * - {@link createRestClient}: a typed `openapi-fetch` client of the OpenAPI document.
 * - {@link createLossServiceClient}, {@link createInferenceClient}: grpc-js clients of
 *   `lossserve.v1.LossService` and `inference.GRPCInferenceService`.
 * - Tensor helpers: typed arrays to and from the gRPC `Tensor` (`{shape, dtype, data}`), the
 *   REST base64 tensor (`{shape, dtype, b64}`) and the Open Inference Protocol's raw tensors.
 * - {@link unary}: a grpc-js unary method as a promise.
 */

import {
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";
import createClient, { type Client, type ClientOptions as RestClientOptions } from "openapi-fetch";

import * as inference from "./generated/grpc/inference/grpc_service.js";
import * as lossservice from "./generated/grpc/lossserve/v1/loss_service.js";
import type { components, operations, paths } from "./generated/openapi.js";

export { credentials, Metadata, status } from "@grpc/grpc-js";
export type { ServiceError } from "@grpc/grpc-js";
export { inference, lossservice };
export type { components, operations, paths };

// ----------------------------------------------------------------------------------- clients

/** The REST API's typed client, e.g. `await client.GET("/losses")`. */
export type RestClient = Client<paths>;

/** A typed REST client for `baseUrl` (e.g. `http://127.0.0.1:8000`). */
export function createRestClient(
  baseUrl: string,
  options: Omit<RestClientOptions, "baseUrl"> = {},
): RestClient {
  return createClient<paths>({ ...options, baseUrl });
}

/**
 * gRPC's own retries for the calls that are pure computations (every one but the model
 * repository's load/unload): a call answered `UNAVAILABLE` (a replica that stopped under it,
 * behind nginx) is sent again, up to 4 attempts, before any answer message. The same policy
 * as the Python client's `lossserve_client.RETRY_POLICY`.
 */
export const RETRY_POLICY = {
  methodConfig: [
    {
      name: [
        { service: "lossserve.v1.LossService" },
        ...[
          "ServerLive",
          "ServerReady",
          "ModelReady",
          "ServerMetadata",
          "ModelMetadata",
          "ModelInfer",
          "ModelConfig",
          "ModelStatistics",
        ].map((method) => ({ service: "inference.GRPCInferenceService", method })),
      ],
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: "0.05s",
        maxBackoff: "1s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
};

/** Channel options of both gRPC clients unless the caller overrides them. */
export const GRPC_OPTIONS: Partial<ClientOptions> = {
  "grpc.service_config": JSON.stringify(RETRY_POLICY),
  // keep up to 8 MiB of a call to resend it (grpc-js keeps 1 MiB by default)
  "grpc.per_rpc_retry_buffer_size": 8 * 1024 * 1024,
  "grpc.max_send_message_length": 512 * 1024 * 1024,
  "grpc.max_receive_message_length": 512 * 1024 * 1024,
};

/** A `lossserve.v1.LossService` client for `target` (`host:port`); plaintext by default. */
export function createLossServiceClient(
  target: string,
  channelCredentials: ChannelCredentials = credentials.createInsecure(),
  options: Partial<ClientOptions> = {},
): lossservice.LossServiceClient {
  return new lossservice.LossServiceClient(target, channelCredentials, {
    ...GRPC_OPTIONS,
    ...options,
  });
}

/** An `inference.GRPCInferenceService` (Open Inference Protocol v2) client for `target`. */
export function createInferenceClient(
  target: string,
  channelCredentials: ChannelCredentials = credentials.createInsecure(),
  options: Partial<ClientOptions> = {},
): inference.GRPCInferenceServiceClient {
  return new inference.GRPCInferenceServiceClient(target, channelCredentials, {
    ...GRPC_OPTIONS,
    ...options,
  });
}

/** A generated unary method's fullest overload: (request, metadata, options, callback). */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/**
 * Call a unary RPC and await its response; a failed call rejects with the grpc-js
 * `ServiceError` (`code`, `details`, trailing `metadata`).
 *
 * @example await unary(client.computeLoss.bind(client), request, { deadline: Date.now() + 5000 })
 */
export function unary<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  options: Partial<CallOptions> = {},
  metadata: Metadata = new Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, metadata, options, (error, response) => {
      if (error) reject(error);
      else resolve(response);
    });
  });
}

// ----------------------------------------------------------------------------------- tensors

/** The dtypes a typed array carries (`bool` as a `Uint8Array` of 0 and 1). */
export type Dtype = "bool" | "uint8" | "int8" | "int16" | "int32" | "int64" | "float32" | "float64";

/** The typed array of each {@link Dtype}. */
export interface TypedArrays {
  bool: Uint8Array;
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  float32: Float32Array;
  float64: Float64Array;
}

export type TypedArray = TypedArrays[Dtype];

/** A decoded tensor: its values in C order, its shape and dtype. */
export interface DecodedTensor<D extends Dtype = Dtype> {
  data: TypedArrays[D];
  shape: number[];
  dtype: D;
}

interface DtypeInfo {
  itemsize: number;
  create: (buffer: ArrayBuffer) => TypedArray;
  oip: string;
}

const DTYPES: Record<Dtype, DtypeInfo> = {
  bool: { itemsize: 1, create: (b) => new Uint8Array(b), oip: "BOOL" },
  uint8: { itemsize: 1, create: (b) => new Uint8Array(b), oip: "UINT8" },
  int8: { itemsize: 1, create: (b) => new Int8Array(b), oip: "INT8" },
  int16: { itemsize: 2, create: (b) => new Int16Array(b), oip: "INT16" },
  int32: { itemsize: 4, create: (b) => new Int32Array(b), oip: "INT32" },
  int64: { itemsize: 8, create: (b) => new BigInt64Array(b), oip: "INT64" },
  float32: { itemsize: 4, create: (b) => new Float32Array(b), oip: "FP32" },
  float64: { itemsize: 8, create: (b) => new Float64Array(b), oip: "FP64" },
};

const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

function isDtype(name: string): name is Dtype {
  return Object.hasOwn(DTYPES, name);
}

/** The dtype of a typed array (a `Uint8Array` is `uint8`; say `bool` explicitly). */
export function dtypeOf(array: TypedArray): Dtype {
  if (array instanceof Float32Array) return "float32";
  if (array instanceof Float64Array) return "float64";
  if (array instanceof Int32Array) return "int32";
  if (array instanceof BigInt64Array) return "int64";
  if (array instanceof Int16Array) return "int16";
  if (array instanceof Int8Array) return "int8";
  return "uint8";
}

function elements(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

function checkShape(shape: readonly number[], length: number, where: string): void {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(
      `${where}.shape: expected non-negative integers, got [${shape.join(", ")}]`,
    );
  }
  if (elements(shape) !== length) {
    throw new RangeError(
      `${where}: expected ${elements(shape)} elements for shape [${shape.join(", ")}], got ${length}`,
    );
  }
}

/** The little-endian bytes of `array` (a copy). */
export function toBytes(array: TypedArray): Buffer {
  const bytes = Buffer.from(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  if (BIG_ENDIAN) {
    if (array.BYTES_PER_ELEMENT === 2) bytes.swap16();
    else if (array.BYTES_PER_ELEMENT === 4) bytes.swap32();
    else if (array.BYTES_PER_ELEMENT === 8) bytes.swap64();
  }
  return bytes;
}

/** Little-endian `bytes` as a typed array of `dtype` (a copy, so always aligned). */
export function fromBytes<D extends Dtype>(bytes: Uint8Array, dtype: D): TypedArrays[D] {
  const { itemsize, create } = DTYPES[dtype];
  if (bytes.byteLength % itemsize !== 0) {
    throw new RangeError(
      `bytes: expected a multiple of ${itemsize} bytes for ${dtype}, got ${bytes.byteLength}`,
    );
  }
  const owned = new Uint8Array(bytes.byteLength); // its own buffer, at offset 0: aligned
  owned.set(bytes);
  if (BIG_ENDIAN) {
    const view = Buffer.from(owned.buffer);
    if (itemsize === 2) view.swap16();
    else if (itemsize === 4) view.swap32();
    else if (itemsize === 8) view.swap64();
  }
  return create(owned.buffer) as TypedArrays[D];
}

/** A gRPC `lossserve.v1.Tensor` of `array` in C order with `shape` (dtype from the array). */
export function toTensor(
  array: TypedArray,
  shape: readonly number[],
  dtype: Dtype = dtypeOf(array),
): lossservice.Tensor {
  checkShape(shape, array.length, "tensor");
  const natural = dtypeOf(array);
  if (dtype !== natural && !(dtype === "bool" && natural === "uint8")) {
    throw new TypeError(`tensor.dtype: expected ${natural} for this array, got ${dtype}`);
  }
  return { shape: [...shape], dtype, data: toBytes(array) };
}

/** The typed array, shape and dtype of a gRPC `lossserve.v1.Tensor`. */
export function fromTensor(tensor: lossservice.Tensor, where = "tensor"): DecodedTensor {
  if (!isDtype(tensor.dtype)) {
    throw new TypeError(
      `${where}.dtype: expected one of ${Object.keys(DTYPES).join(", ")}, got ${JSON.stringify(tensor.dtype)}`,
    );
  }
  const expected = elements(tensor.shape) * DTYPES[tensor.dtype].itemsize;
  if (tensor.data.byteLength !== expected) {
    throw new RangeError(
      `${where}: expected ${expected} bytes for shape [${tensor.shape.join(", ")}] of ${tensor.dtype}, got ${tensor.data.byteLength}`,
    );
  }
  return {
    data: fromBytes(tensor.data, tensor.dtype),
    shape: [...tensor.shape],
    dtype: tensor.dtype,
  };
}

/** The REST API's base64 tensor (`{shape, dtype, b64}`) of `array` with `shape`. */
export function toB64Tensor(
  array: TypedArray,
  shape: readonly number[],
  dtype: Dtype = dtypeOf(array),
): components["schemas"]["B64Tensor"] {
  const tensor = toTensor(array, shape, dtype);
  return { shape: tensor.shape, dtype, b64: tensor.data.toString("base64") };
}

/** The typed array, shape and dtype of a REST base64 tensor. */
export function fromB64Tensor(
  tensor: components["schemas"]["B64Tensor"],
  where = "tensor",
): DecodedTensor {
  return fromTensor(
    { shape: tensor.shape, dtype: tensor.dtype, data: Buffer.from(tensor.b64, "base64") },
    where,
  );
}

// ------------------------------------------------------------- Open Inference Protocol (gRPC)

/** An OIP input tensor and its raw bytes (for `ModelInferRequest.rawInputContents`). */
export interface InferInput {
  input: inference.ModelInferRequest_InferInputTensor;
  raw: Buffer;
}

/** An input named `name` of `array` with `shape`, for `ModelInferRequest`. */
export function toInferInput(
  name: string,
  array: TypedArray,
  shape: readonly number[],
  dtype: Dtype = dtypeOf(array),
): InferInput {
  const tensor = toTensor(array, shape, dtype);
  return {
    input: inference.ModelInferRequest_InferInputTensor.fromPartial({
      name,
      datatype: DTYPES[dtype].oip,
      shape: tensor.shape,
    }),
    raw: tensor.data,
  };
}

/** A `ModelInferRequest` of `inputs` (raw bytes) asking for `outputs` (empty: all of them). */
export function inferRequest(
  model: string,
  inputs: readonly InferInput[],
  outputs: readonly string[] = [],
  version = "",
): inference.ModelInferRequest {
  return inference.ModelInferRequest.fromPartial({
    modelName: model,
    modelVersion: version,
    inputs: inputs.map((i) => i.input),
    outputs: outputs.map((name) => ({ name })),
    rawInputContents: inputs.map((i) => i.raw),
  });
}

/** Every output of a `ModelInferResponse` (raw contents) by name; BYTES outputs are left out. */
export function inferOutputs(response: inference.ModelInferResponse): Map<string, DecodedTensor> {
  const byOip = new Map(Object.entries(DTYPES).map(([dtype, info]) => [info.oip, dtype as Dtype]));
  const decoded = new Map<string, DecodedTensor>();
  response.outputs.forEach((output, index) => {
    const dtype = byOip.get(output.datatype);
    const raw = response.rawOutputContents[index];
    if (dtype === undefined || raw === undefined) return;
    decoded.set(output.name, fromTensor({ shape: output.shape, dtype, data: raw }, output.name));
  });
  return decoded;
}
