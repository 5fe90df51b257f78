// AWS SDK for JavaScript v3 against a running Tessera server (run by test_js_sdk.py).
//
// Owns: the JS SDK checks: a PutObject with a stream body (the SDK sends it as
// STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer, even over http), GET back,
// a 20 MB lib-storage Upload (multipart), ranges, listing, copy, delete. It prints the payload
// mode seen for every command and "JS-SDK-CHECKS-OK" at the end; any failure exits non-zero.
// Must never: talk to anything but TESSERA_ENDPOINT, or report success without comparing bytes.

import {
  S3Client,
  CreateBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteBucketCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const endpoint = env("TESSERA_ENDPOINT");
const bucket = env("TESSERA_BUCKET");
const MIB = 1024 * 1024;

// Deterministic pseudo-random bytes (xorshift32), so failures reproduce.
function detBytes(size, seed) {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32b64(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

// A stream that hands the body over in uneven chunks, like a file or socket would.
function streamOf(buf, chunk = 64 * 1024 + 7) {
  return Readable.from((function* () {
    for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
  })());
}

const client = new S3Client({
  endpoint,
  region: process.env.TESSERA_REGION || "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
  credentials: {
    accessKeyId: env("TESSERA_ACCESS_KEY"),
    secretAccessKey: env("TESSERA_SECRET_KEY"),
  },
});

// Record what each command really sent (the deserialize step sees the signed request).
const modes = {};
client.middlewareStack.add(
  (next, context) => async (args) => {
    const h = args.request.headers || {};
    const find = (name) => Object.entries(h).find(([k]) => k.toLowerCase() === name)?.[1];
    let mode = find("x-amz-content-sha256") || "(none)";
    if (/^[0-9a-f]{64}$/.test(mode)) mode = "signed-sha256";
    const trailer = find("x-amz-trailer");
    if (trailer) mode += ` trailer=${trailer}`;
    (modes[context.commandName] ||= new Set()).add(mode);
    return next(args);
  },
  { step: "deserialize", name: "recordPayloadMode" },
);

async function bodyBytes(resp) {
  return Buffer.from(await resp.Body.transformToByteArray());
}

async function main() {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));

  // 1. Stream body, single PutObject: aws-chunked with an unsigned CRC32 trailer.
  const small = detBytes(MIB + 12345, 7);
  const put = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/stream.bin", Body: streamOf(small), ContentLength: small.length,
    ContentType: "application/x-js",
  }));
  assert.equal(put.ETag.replaceAll('"', ""), createHash("md5").update(small).digest("hex"));
  const putModes = [...modes.PutObjectCommand];
  assert.ok(putModes.some((m) => m.startsWith("STREAMING-UNSIGNED-PAYLOAD-TRAILER")),
    `PutObject modes: ${putModes}`);
  let got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/stream.bin" }));
  assert.equal(got.ContentType, "application/x-js");
  assert.equal(sha256(await bodyBytes(got)), sha256(small));
  const head = await client.send(new HeadObjectCommand({
    Bucket: bucket, Key: "js/stream.bin", ChecksumMode: "ENABLED",
  }));
  assert.equal(head.ContentLength, small.length);
  assert.equal(head.ChecksumCRC32, crc32b64(small), "stored CRC32 from the trailer");
  console.log("stream put/get ok");

  // 2. A Buffer body and an empty body.
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: "js/dir/buffer.txt", Body: Buffer.from("hello from js") }));
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: "js/dir/empty", Body: "" }));
  got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/dir/buffer.txt" }));
  assert.equal((await bodyBytes(got)).toString(), "hello from js");
  got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/dir/empty" }));
  assert.equal((await bodyBytes(got)).length, 0);

  // 3. 20 MB multipart through lib-storage from a stream.
  const big = detBytes(20 * 1000 * 1000, 99);
  const upload = new Upload({
    client, params: { Bucket: bucket, Key: "js/big.bin", Body: streamOf(big, MIB + 3) },
    partSize: 5 * MIB, queueSize: 2, leavePartsOnError: false,
  });
  await upload.done();
  const bigHead = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "js/big.bin" }));
  assert.equal(bigHead.ContentLength, big.length);
  assert.match(bigHead.ETag, /-4"?$/, `multipart ETag ${bigHead.ETag}`);
  got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/big.bin" }));
  assert.equal(sha256(await bodyBytes(got)), sha256(big));
  console.log("multipart upload ok");

  // 4. Ranges.
  got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/big.bin", Range: "bytes=7340030-7340100" }));
  assert.equal(got.ContentRange, `bytes 7340030-7340100/${big.length}`);
  assert.deepEqual(await bodyBytes(got), big.subarray(7340030, 7340101));
  got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/big.bin", Range: "bytes=-5" }));
  assert.deepEqual(await bodyBytes(got), big.subarray(big.length - 5));

  // 5. Listing with prefix and delimiter.
  const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "js/", Delimiter: "/" }));
  assert.deepEqual((list.Contents || []).map((o) => o.Key), ["js/big.bin", "js/stream.bin"]);
  assert.deepEqual((list.CommonPrefixes || []).map((p) => p.Prefix), ["js/dir/"]);

  // 6. Copy.
  await client.send(new CopyObjectCommand({ Bucket: bucket, Key: "js/copy.bin", CopySource: `${bucket}/js/stream.bin` }));
  got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "js/copy.bin" }));
  assert.equal(sha256(await bodyBytes(got)), sha256(small));

  // 7. Delete everything, then the bucket.
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "js/copy.bin" }));
  const del = await client.send(new DeleteObjectsCommand({
    Bucket: bucket,
    Delete: { Objects: ["js/big.bin", "js/stream.bin", "js/dir/buffer.txt", "js/dir/empty"].map((Key) => ({ Key })) },
  }));
  assert.equal((del.Deleted || []).length, 4, JSON.stringify(del.Errors));
  const after = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  assert.equal(after.KeyCount, 0);
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));

  const summary = Object.fromEntries(Object.entries(modes).map(([k, v]) => [k, [...v].sort()]));
  console.log("payload-modes: " + JSON.stringify(summary));
  console.log("JS-SDK-CHECKS-OK");
}

main().catch((err) => {
  const code = err?.Code || err?.name || "Error";
  const status = err?.$metadata?.httpStatusCode;
  console.error(`FAILED: ${code}${status ? ` (HTTP ${status})` : ""}: ${err?.message}`);
  if (err?.stack) console.error(err.stack);
  process.exit(1);
});
