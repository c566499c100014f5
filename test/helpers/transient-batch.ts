/**
 * Run as a child process with a low open-file limit (`node transient-batch.js <dataset root> <artifact root>`): runs
 * one batch with every file descriptor taken from when its cache lookup misses (every image read and hashed) until the
 * last one starts decoding, so re-reading them to decode fails with EMFILE while writing its shards would not; then
 * runs the batch again. Prints what each run did as JSON.
 */
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalArtifactStore } from '../../lib/artifacts';
import { loadSettings } from '../../lib/config';
import { listImageFolder } from '../../lib/datasets/folder';
import { preprocessImages } from '../../lib/preprocessing/batch';
import { withinLimits } from '../../lib/preprocessing/limits';
import { folderReader } from '../../lib/preprocessing/readers';
import { preprocessSpecSchema } from '../../lib/schemas/preprocess';

/** Opens /dev/null until the process is out of file descriptors; returns them, to be closed later. */
function takeEveryDescriptor(): number[] {
  const taken: number[] = [];
  for (;;) {
    try {
      taken.push(openSync('/dev/null', 'r'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EMFILE') return taken;
      throw err;
    }
  }
}

/** A local store that calls `onCacheMiss` when a batch looks for its cached output and finds none. */
class StoreWatchingCacheLookups extends LocalArtifactStore {
  onCacheMiss = () => {};

  override async readJson<T>(uri: string): Promise<T> {
    try {
      return await super.readJson<T>(uri);
    } catch (err) {
      if (uri.includes('cache/preprocess/')) this.onCacheMiss();
      throw err;
    }
  }
}

async function main(root: string, artifactRoot: string): Promise<void> {
  const images = (await listImageFolder(root)).perClass.flat();
  const spec = withinLimits(preprocessSpecSchema.parse({ width: 8, height: 8 }), images.length, loadSettings().limits);
  const store = new StoreWatchingCacheLookups(artifactRoot);
  const reader = folderReader(root, spec.maxFileBytes);
  let taken: number[] = [];
  let descriptorsTaken = 0;
  const release = () => taken.splice(0).forEach((fd) => closeSync(fd));
  // Once: every re-read to decode then finds no descriptor free.
  store.onCacheMiss = () => {
    if (descriptorsTaken > 0) return;
    taken = takeEveryDescriptor();
    descriptorsTaken = taken.length;
  };
  const exhausted = await preprocessImages(images, reader, spec, store, {
    retainBytes: 0,
    onProgress: (done, phase) => {
      if (phase === 'decode' && done === images.length) release();
    },
  }).then(
    (run) => ({ failed: false as const, leftOut: run.output.leftOut }),
    (err: Error & { code?: string }) => ({ failed: true as const, name: err.name, code: err.code, message: err.message }),
  );
  release();
  const cacheDir = join(artifactRoot, 'cache');
  const cacheEntries = existsSync(cacheDir) ? readdirSync(cacheDir, { recursive: true }).length : 0;
  const retried = await preprocessImages(images, reader, spec, store);
  const result = { listed: images.length, descriptorsTaken, exhausted, cacheEntries, retried: { kept: retried.output.byHash.sha256.length, leftOut: retried.output.leftOut, cacheHit: retried.cacheHit } };
  process.stdout.write(JSON.stringify(result));
}

if (require.main === module && process.argv.length === 4) {
  main(process.argv[2]!, process.argv[3]!).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
