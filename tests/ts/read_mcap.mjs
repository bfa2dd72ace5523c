// Reads MCAP files with the TypeScript indexed reader that Foxglove uses (@mcap/core's
// McapIndexedReader) and prints one JSON line per file: what the reader saw, digested so that
// tests/ingest/test_ts_reader.py can compare it with the Python mcap library's view of the same
// file. Usage: node read_mcap.mjs FILE.mcap... (exit 1 when any file is rejected).
//
// The message digest is sha256 over, for every message in the reader's order (log time, then
// position in the file), the concatenation of:
//   u32le(len(topic)) topic(utf-8) u64le(logTime) u64le(publishTime) u32le(sequence)
//   u64le(len(data)) data
// The Python side builds the same bytes; keep the two in step.

import { createHash } from "node:crypto";
import { open } from "node:fs/promises";

import lz4 from "@foxglove/wasm-lz4";
import * as zstd from "@foxglove/wasm-zstd";
import { McapIndexedReader } from "@mcap/core";

await Promise.all([zstd.isLoaded, lz4.isLoaded]);

// Exactly the chunk compressions the MCAP spec names; any other one is an error of the file.
const decompressHandlers = {
  zstd: (data, size) => zstd.decompress(data, Number(size)),
  lz4: (data, size) => lz4(data, Number(size)),
};

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function u32(value) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

function u64(value) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

// A file-backed IReadable: Foxglove reads remote files the same way, by ranges.
function fileReadable(handle, size) {
  return {
    size: async () => BigInt(size),
    read: async (offset, length) => {
      const buffer = new Uint8Array(Number(length));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, Number(offset));
      if (bytesRead !== buffer.length) {
        throw new Error(`short read: ${bytesRead} of ${length} bytes at offset ${offset}`);
      }
      return buffer;
    },
  };
}

async function readFile(path) {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const reader = await McapIndexedReader.Initialize({
      readable: fileReadable(handle, size),
      decompressHandlers,
    });
    // What a viewer relies on beyond parsing: the summary agrees with itself and the data.
    const problems = [];
    const schemas = [...reader.schemasById.values()].map((s) => ({
      id: s.id,
      name: s.name,
      encoding: s.encoding,
      sha256: sha256(s.data),
    }));
    const channels = [...reader.channelsById.values()].map((c) => {
      if (c.schemaId !== 0 && !reader.schemasById.has(c.schemaId)) {
        problems.push(`channel ${c.id} (${c.topic}) names schema ${c.schemaId}, not in the summary`);
      }
      return {
        id: c.id,
        topic: c.topic,
        encoding: c.messageEncoding,
        schema: reader.schemasById.get(c.schemaId)?.name ?? null,
        metadata: Object.fromEntries(c.metadata),
      };
    });

    const digest = createHash("sha256");
    const perChannel = new Map();
    let count = 0;
    for await (const m of reader.readMessages({ validateCrcs: true })) {
      const channel = reader.channelsById.get(m.channelId);
      if (channel == undefined) {
        throw new Error(`message on channel ${m.channelId}, which the summary does not hold`);
      }
      const topic = Buffer.from(channel.topic, "utf8");
      digest.update(u32(topic.length));
      digest.update(topic);
      digest.update(u64(m.logTime));
      digest.update(u64(m.publishTime));
      digest.update(u32(m.sequence));
      digest.update(u64(m.data.byteLength));
      digest.update(m.data);
      perChannel.set(m.channelId, (perChannel.get(m.channelId) ?? 0) + 1);
      count += 1;
    }

    const attachments = [];
    for await (const a of reader.readAttachments({ validateCrcs: true })) {
      attachments.push({
        name: a.name,
        media_type: a.mediaType,
        log_time: a.logTime.toString(),
        create_time: a.createTime.toString(),
        sha256: sha256(a.data),
      });
    }
    const metadata = [];
    for await (const r of reader.readMetadata()) {
      metadata.push({ name: r.name, metadata: Object.fromEntries(r.metadata) });
    }

    const stats = reader.statistics;
    if (stats != undefined) {
      const expect = (what, declared, seen) => {
        if (BigInt(declared) !== BigInt(seen)) {
          problems.push(`statistics say ${declared} ${what}, the reader found ${seen}`);
        }
      };
      expect("messages", stats.messageCount, count);
      expect("schemas", stats.schemaCount, reader.schemasById.size);
      expect("channels", stats.channelCount, reader.channelsById.size);
      expect("attachments", stats.attachmentCount, attachments.length);
      expect("metadata records", stats.metadataCount, metadata.length);
      expect("chunks", stats.chunkCount, reader.chunkIndexes.length);
      for (const [id, declared] of stats.channelMessageCounts) {
        expect(`messages on channel ${id}`, declared, perChannel.get(id) ?? 0);
      }
    }
    return {
      path,
      ok: true,
      profile: reader.header.profile,
      library: reader.header.library,
      schemas,
      channels,
      message_count: count,
      messages_sha256: digest.digest("hex"),
      attachments,
      metadata,
      chunk_count: reader.chunkIndexes.length,
      has_statistics: stats != undefined,
      problems,
    };
  } finally {
    await handle.close();
  }
}

let failed = false;
for (const path of process.argv.slice(2)) {
  let result;
  try {
    result = await readFile(path);
  } catch (error) {
    failed = true;
    result = { path, ok: false, error: String(error?.message ?? error) };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
process.exitCode = failed ? 1 : 0;
