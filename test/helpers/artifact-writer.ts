/**
 * Stores one large artifact and exits, so a test can kill it mid-write:
 *   node artifact-writer.js <store root> <blob|directory> <bytes> <fill text>
 * A directory artifact holds two files of <bytes> each.
 */
import { LocalArtifactStore } from '../../lib/artifacts';

async function main(): Promise<void> {
  const [root, kind, bytes, fill] = process.argv.slice(2) as [string, 'blob' | 'directory', string, string];
  const store = new LocalArtifactStore(root);
  const data = Buffer.alloc(Number(bytes), fill);
  const stored = kind === 'blob' ? await store.putBlob(data, '.bin') : await store.putDirectory({ 'a.bin': data, 'b.bin': data });
  console.log(stored.uri);
}

void main();
