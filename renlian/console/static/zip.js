// Reads the entries of a zip file in the browser, one at a time, without loading the whole archive:
// the central directory first (at the end of the file), then each entry's bytes when asked for.
// Stored and deflated entries are read (what every zip tool writes); deflate is undone by the
// browser's own DecompressionStream. ZIP64 archives (over 4 GiB or 65,535 entries) and encrypted
// entries are refused with a reason.

const END_OF_DIRECTORY = 0x06054b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
// The end-of-directory record is 22 bytes, followed by a comment of at most 65,535.
const END_SEARCH = 22 + 0xffff;

export class ZipError extends Error {}

async function bytes(blob, start, end) {
  return new DataView(await blob.slice(start, end).arrayBuffer());
}

/** The archive's entries, folders left out: [{name, size, read() -> Promise<Blob>}]. */
export async function zipEntries(file) {
  const tailStart = Math.max(0, file.size - END_SEARCH);
  const tail = await bytes(file, tailStart, file.size);
  let end = -1;
  for (let offset = tail.byteLength - 22; offset >= 0; offset -= 1) {
    if (tail.getUint32(offset, true) === END_OF_DIRECTORY) {
      end = offset;
      break;
    }
  }
  if (end < 0) throw new ZipError("not a zip file");
  const count = tail.getUint16(end + 10, true);
  const directorySize = tail.getUint32(end + 12, true);
  const directoryStart = tail.getUint32(end + 16, true);
  if (count === 0xffff || directoryStart === 0xffffffff) throw new ZipError("ZIP64 archives are not supported");
  const directory = await bytes(file, directoryStart, directoryStart + directorySize);
  const names = new TextDecoder();
  const entries = [];
  let offset = 0;
  for (let index = 0; index < count; index += 1) {
    if (directory.getUint32(offset, true) !== DIRECTORY_ENTRY) throw new ZipError("damaged zip directory");
    const flags = directory.getUint16(offset + 8, true);
    const method = directory.getUint16(offset + 10, true);
    const compressed = directory.getUint32(offset + 20, true);
    const size = directory.getUint32(offset + 24, true);
    const nameLength = directory.getUint16(offset + 28, true);
    const extraLength = directory.getUint16(offset + 30, true);
    const commentLength = directory.getUint16(offset + 32, true);
    const local = directory.getUint32(offset + 42, true);
    const nameBytes = new Uint8Array(directory.buffer, directory.byteOffset + offset + 46, nameLength);
    const name = names.decode(nameBytes);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith("/")) continue;
    entries.push({ name, size, read: () => readEntry(file, { name, flags, method, compressed, local }) });
  }
  return entries;
}

async function readEntry(file, { name, flags, method, compressed, local }) {
  if (flags & 1) throw new ZipError(`${name} is encrypted`);
  const header = await bytes(file, local, local + 30);
  if (header.getUint32(0, true) !== LOCAL_HEADER) throw new ZipError(`${name}: damaged zip entry`);
  // The local header's own name and extra lengths: they may differ from the directory's.
  const start = local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
  const data = file.slice(start, start + compressed);
  if (method === 0) return data;
  if (method !== 8) throw new ZipError(`${name}: compression method ${method} is not supported`);
  const inflated = data.stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(inflated).blob();
}
