// The labels a served model predicts for some rows, through the TypeScript client.
//
//   node predict.mjs HTTP_URL MODEL ROWS_JSON_FILE
//
// Prints the `predictions` of `POST /models/{model}/predict` (the package's compiled
// `dist/`: `npm run build --prefix clients/typescript` first).
import { readFileSync } from "node:fs";

const [httpUrl, model, rowsFile] = process.argv.slice(2);
const { createRestClient } = await import(
  new URL("../../../clients/typescript/dist/src/index.js", import.meta.url).href
);
const rows = JSON.parse(readFileSync(rowsFile, "utf-8"));
const { data, error, response } = await createRestClient(httpUrl).POST(
  "/models/{model_name}/predict",
  { params: { path: { model_name: model } }, body: { instances: rows } },
);
if (response.status !== 200) {
  console.error(`predict answered ${response.status}: ${JSON.stringify(error)}`);
  process.exit(1);
}
console.log(JSON.stringify(data.predictions));
