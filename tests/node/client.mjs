// A PixelCheck client in Node.js built from the .proto files alone (no generated code, no Python):
// sign in, upload an image with client streaming (or have the server import an http(s) URL), watch the
// analysis with server streaming, read the result, and print a JSON summary on stdout.
//
//   PIXELCHECK_ADDR=127.0.0.1:50051 PIXELCHECK_LOGIN=alice PIXELCHECK_PASSWORD=... node client.mjs photo.jpg
//   PIXELCHECK_EXTERNAL_ID=case-1 ... node client.mjs https://example.org/photo.jpg
//
// Exit status: 0 when the analysis finished (SUCCEEDED or FAILED, see "state"), 1 on any error.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTOS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "protos");
const CHUNK_BYTES = 1024 * 1024; // the server accepts chunks of at most 1 MiB
const CALL_SECONDS = 30;
const WATCH_SECONDS = 300; // a queued analysis may wait behind others

function loadServices() {
  const definition = protoLoader.loadSync(
    ["pixelcheck/v1/auth.proto", "pixelcheck/v1/ingestion.proto", "pixelcheck/v1/results.proto"],
    // keepCase: the same field names as the .proto files (and grpcurl); enums as their names.
    { includeDirs: [PROTOS], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(definition).pixelcheck.v1;
}

function deadline(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

function unary(client, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: deadline(CALL_SECONDS) }, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

function uploadImage(ingestion, metadata, path) {
  const data = readFileSync(path);
  return new Promise((resolve, reject) => {
    const call = ingestion.UploadImage(metadata, { deadline: deadline(CALL_SECONDS * 4) }, (error, response) =>
      error ? reject(error) : resolve(response));
    call.write({
      metadata: {
        filename: basename(path),
        size_bytes: String(data.length),
        sha256: createHash("sha256").update(data).digest("hex"),
      },
    });
    for (let start = 0; start < data.length; start += CHUNK_BYTES) {
      call.write({ chunk: data.subarray(start, start + CHUNK_BYTES) });
    }
    call.end();
  });
}

function watchAnalysis(results, metadata, imageId) {
  return new Promise((resolve, reject) => {
    const events = [];
    const stream = results.WatchAnalysis({ image_id: imageId }, metadata, { deadline: deadline(WATCH_SECONDS) });
    stream.on("data", (response) => events.push(response.event));
    stream.on("error", reject);
    stream.on("end", () => resolve(events));
  });
}

async function main() {
  const [imagePath] = process.argv.slice(2);
  const { PIXELCHECK_ADDR: address, PIXELCHECK_LOGIN: login, PIXELCHECK_PASSWORD: password } = process.env;
  if (!imagePath || !address || !login || !password) {
    console.error("usage: PIXELCHECK_ADDR=host:port PIXELCHECK_LOGIN=… PIXELCHECK_PASSWORD=… node client.mjs IMAGE");
    process.exit(2);
  }
  const v1 = loadServices();
  const credentials = grpc.credentials.createInsecure();
  const auth = new v1.AuthService(address, credentials);
  const ingestion = new v1.IngestionService(address, credentials);
  const results = new v1.ResultsService(address, credentials);

  const signedIn = await unary(auth, "SignIn", { login, password });
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${signedIn.access_token}`);

  const external_id = process.env.PIXELCHECK_EXTERNAL_ID ?? "";
  const uploaded = /^https?:\/\//i.test(imagePath)
    ? await unary(ingestion, "ImportImage", { url: imagePath, external_id }, metadata)
    : await uploadImage(ingestion, metadata, imagePath);
  const events = await watchAnalysis(results, metadata, uploaded.image.id);
  const { result } = await unary(results, "GetResult", { image_id: uploaded.image.id }, metadata);
  const last = events.at(-1);

  console.log(JSON.stringify({
    user: signedIn.user.username,
    image_id: uploaded.image.id,
    external_id: uploaded.image.external_id,
    result_external_id: result.external_id,
    content_type: uploaded.image.content_type,
    size_bytes: uploaded.image.size_bytes,
    duplicate: uploaded.duplicate,
    stages: events.map((event) => event.stage),
    state: result.state,
    label: result.label,
    confidence: result.confidence,
    prob_ai: result.prob_ai,
    signals: result.signals.map((signal) => signal.name),
    watch_result_matches: last?.result?.image_id === result.image_id && last?.result?.label === result.label,
  }, null, 2));
  for (const client of [auth, ingestion, results]) client.close();
}

main().catch((error) => {
  console.error(`pixelcheck node client: ${error.code !== undefined ? grpc.status[error.code] + ": " : ""}${error.details ?? error.message}`);
  process.exit(1);
});
