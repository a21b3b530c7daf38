// The focal loss over REST and gRPC, then (with LOSSSERVE_MODEL set) a model's prediction.
// In clients/typescript, with a server up: npm run build && node dist/examples/quickstart.js
import {
  createLossServiceClient,
  createRestClient,
  fromTensor,
  lossservice,
  toTensor,
  unary,
} from "@lossserve/client";

const httpUrl = process.env.LOSSSERVE_HTTP_URL ?? "http://localhost:8000";
const grpcTarget = process.env.LOSSSERVE_GRPC_TARGET ?? "localhost:50051";
const logits = [
  [2.0, -1.0, 0.5],
  [0.1, 0.3, -0.2],
];
const targets = [0, 2];

// REST: the typed openapi-fetch client, nested lists in JSON.
const rest = createRestClient(httpUrl);
const { data, error } = await rest.POST("/loss", {
  body: { loss: "focal", params: { gamma: 2 }, logits, targets, return_grad: true },
});
if (typeof data !== "object") throw new Error(`POST /loss: ${JSON.stringify(error ?? data)}`);
console.log(`rest focal ${data.value}`);

// gRPC: lossserve.v1.LossService, tensors as little-endian bytes.
const grpc = createLossServiceClient(grpcTarget);
const request = lossservice.ComputeLossRequest.fromPartial({
  loss: "focal",
  paramsJson: JSON.stringify({ gamma: 2 }),
  logits: toTensor(Float32Array.from(logits.flat()), [2, 3]),
  targets: toTensor(BigInt64Array.from(targets.map(BigInt)), [2]),
  returnGrad: true,
});
const response = await unary(grpc.computeLoss.bind(grpc), request, {
  deadline: Date.now() + 10_000,
});
grpc.close();
console.log(`grpc focal ${fromTensor(response.value!).data[0]}`);

// A served model's prediction of one row of zeros, as wide as its metadata's input.
const model = process.env.LOSSSERVE_MODEL;
if (model) {
  const metadata = await (await fetch(`${httpUrl}/v2/models/${model}`)).json();
  const width = (metadata as { inputs: { shape: number[] }[] }).inputs[0]!.shape[1]!;
  const predicted = await rest.POST("/models/{model_name}/predict", {
    params: { path: { model_name: model } },
    body: { instances: [new Array<number>(width).fill(0)] },
  });
  if (!predicted.data) throw new Error(`predict: ${JSON.stringify(predicted.error)}`);
  console.log(`rest predict ${predicted.data.predictions[0]!.labels.join(",")}`);
}
