// Writes every file under src/generated/ from the repository's contracts (never edit them):
//
//   src/generated/openapi.ts           openapi-typescript, from ../../openapi/openapi.json
//   src/generated/grpc/<path>.ts       ts-proto (grpc-js services), one per ../../proto/**/*.proto
//
// Usage (after `npm ci`):
//
//   npm run generate            rewrite src/generated/ (what is committed)
//   npm run generate -- --check write to a temporary folder instead; exit 1, naming the
//                               files, when src/generated/ differs from it (stale)
//
// protoc is the one bundled with Python's grpcio-tools (`python -m grpc_tools.protoc`, which
// adds its well-known types to the include path itself). The interpreter is $PYTHON when
// set, else ../../.venv/bin/python when it exists, else python3.
//
// The output is deterministic: src/generated/ is emptied first (no stale files survive a
// removed .proto), the .proto files are compiled in sorted order, ts-proto is told not to
// stamp its or protoc's version into the files, and openapi-typescript writes no timestamp.
// Both generators format their own output, so what this writes is what is committed.

import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(here, "..", "..");
const openapiDocument = join(repo, "openapi", "openapi.json");
const protoRoot = join(repo, "proto");
const generated = join(here, "src", "generated");
const bin = join(here, "node_modules", ".bin");

/** ts-proto's options (https://github.com/stephenh/ts-proto#supported-options). */
const TS_PROTO_OPTIONS = [
  "outputServices=grpc-js", // @grpc/grpc-js client constructors and service definitions
  "env=node",
  "esModuleInterop=true",
  "importSuffix=.js", // ES modules under "module": "NodeNext" import files with their suffix
  "forceLong=number", // int64 as number (shapes, counts); ts-proto throws past 2^53
  "annotateFilesWithVersion=false", // no tool versions in the files: same output anywhere
];

function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = join(repo, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

/** Every file under `root` whose name ends with `suffix`, relative with "/", sorted. */
function filesUnder(root, suffix = "") {
  const found = [];
  const walk = (directory) => {
    for (const name of readdirSync(directory)) {
      const path = join(directory, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(suffix)) found.push(relative(root, path).split(sep).join("/"));
    }
  };
  if (existsSync(root)) walk(root);
  return found.sort();
}

function run(command, args, hint = "") {
  try {
    execFileSync(command, args, { cwd: here, stdio: "inherit" });
  } catch (error) {
    console.error(`generate: ${command} ${args.join(" ")} failed${hint}`);
    process.exit(typeof error.status === "number" && error.status > 0 ? error.status : 1);
  }
}

/** Write every generated file into `out` (emptied first). */
function generate(out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "grpc"), { recursive: true });

  run(join(bin, "openapi-typescript"), [
    relative(here, openapiDocument),
    "--output",
    join(out, "openapi.ts"),
    // A field with a default is optional in a request body (LossRequestBody.return_grad...);
    // by default openapi-typescript 7 types it as always present.
    "--default-non-nullable",
    "false",
  ]);

  const interpreter = python();
  run(
    interpreter,
    [
      "-m",
      "grpc_tools.protoc",
      `--plugin=protoc-gen-ts_proto=${join(bin, "protoc-gen-ts_proto")}`,
      `--ts_proto_out=${join(out, "grpc")}`,
      `--ts_proto_opt=${TS_PROTO_OPTIONS.join(",")}`,
      `-I${relative(here, protoRoot)}`,
      ...filesUnder(protoRoot, ".proto"),
    ],
    ` (is grpcio-tools installed for ${interpreter}? set PYTHON to an interpreter that has it)`,
  );
}

for (const tool of ["openapi-typescript", "protoc-gen-ts_proto"]) {
  if (!existsSync(join(bin, tool))) {
    console.error(`generate: ${join(bin, tool)} is missing; run \`npm ci\` in ${here} first`);
    process.exit(1);
  }
}

if (process.argv.includes("--check")) {
  const scratch = mkdtempSync(join(tmpdir(), "lossserve-ts-generate-"));
  try {
    const fresh = join(scratch, "generated");
    generate(fresh);
    const names = [...new Set([...filesUnder(fresh), ...filesUnder(generated)])].sort();
    const stale = names.filter((name) => {
      const [a, b] = [join(fresh, name), join(generated, name)];
      return !existsSync(a) || !existsSync(b) || !readFileSync(a).equals(readFileSync(b));
    });
    if (stale.length > 0) {
      console.error(`generate: stale files under src/generated/ (run \`npm run generate\`):`);
      for (const name of stale) console.error(`  ${name}`);
      process.exitCode = 1;
    } else {
      console.log("generate: src/generated/ is up to date");
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else {
  generate(generated);
  console.log(`generate: wrote ${filesUnder(generated).length} files under src/generated/`);
}
