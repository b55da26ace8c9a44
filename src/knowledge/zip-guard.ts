/** Thrown for an archive that would unpack past the limits, or that cannot be read. */
export class ZipRefusedError extends Error {
  override name = 'ZipRefusedError';
}

export interface ZipEntry {
  name: string;
  compressedSize: number;
  uncompressedSize: number;
}

/** What one archive may unpack to: a DOCX of real text is far below both. */
export const ZIP_LIMITS = { maxEntries: 2_000, maxUncompressedBytes: 100 * 1024 * 1024, maxRatio: 200 } as const;

/**
 * The entries of a ZIP archive from its central directory, read without inflating anything.
 * Throws when there is no readable directory.
 */
export function zipEntries(bytes: Buffer): ZipEntry[] {
  // The end-of-central-directory record: in the last 64 KiB + 22 bytes (a comment may follow it).
  const from = Math.max(0, bytes.length - 65_557);
  let end = -1;
  for (let at = bytes.length - 22; at >= from; at--) {
    if (bytes.readUInt32LE(at) === 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new ZipRefusedError('The archive is damaged: no central directory');
  const count = bytes.readUInt16LE(end + 10);
  let at = bytes.readUInt32LE(end + 16);
  if (count > ZIP_LIMITS.maxEntries) throw new ZipRefusedError(`The archive has ${count} entries (at most ${ZIP_LIMITS.maxEntries})`);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || bytes.readUInt32LE(at) !== 0x02014b50)
      throw new ZipRefusedError('The archive is damaged: a broken central directory');
    const compressedSize = bytes.readUInt32LE(at + 20);
    const uncompressedSize = bytes.readUInt32LE(at + 24);
    const nameLength = bytes.readUInt16LE(at + 28);
    const extra = bytes.readUInt16LE(at + 30);
    const comment = bytes.readUInt16LE(at + 32);
    entries.push({ name: bytes.toString('utf8', at + 46, at + 46 + nameLength), compressedSize, uncompressedSize });
    at += 46 + nameLength + extra + comment;
  }
  return entries;
}

/**
 * Refuses an archive that would unpack to more than the limits allow (a zip bomb): too many
 * entries, too many bytes in all, or an entry that grows more than `maxRatio` times.
 */
export function checkZipLimits(bytes: Buffer): void {
  const entries = zipEntries(bytes);
  let total = 0;
  for (const entry of entries) {
    total += entry.uncompressedSize;
    if (entry.uncompressedSize > 1024 * 1024 && entry.uncompressedSize > ZIP_LIMITS.maxRatio * Math.max(1, entry.compressedSize))
      throw new ZipRefusedError(
        `The archive looks like a zip bomb: ${entry.name} unpacks ${Math.round(entry.uncompressedSize / Math.max(1, entry.compressedSize))} times its size`,
      );
  }
  if (total > ZIP_LIMITS.maxUncompressedBytes)
    throw new ZipRefusedError(
      `The archive unpacks to ${Math.round(total / 1024 / 1024)} MiB (at most ${ZIP_LIMITS.maxUncompressedBytes / 1024 / 1024} MiB)`,
    );
}
