import { ArtifactPathError } from '../artifacts';

/** Why a file was left out of a dataset: a bounded set, used as a metric label and in the manifest's report. */
export const QUARANTINE_REASONS = [
  'empty',
  'not_an_image',
  'corrupt',
  'truncated',
  'too_large',
  'unreadable',
  'not_a_file',
  'outside_root',
  'duplicate',
] as const;
export type QuarantineReason = (typeof QUARANTINE_REASONS)[number];

export interface LeftOutFile {
  /** Path relative to the dataset root (IDX records: `<file>#<index>`). */
  path: string;
  reason: QuarantineReason;
  detail: string;
}

/** A file that cannot become a training image; carries the reason it is reported under. */
export class QuarantineError extends Error {
  override name = 'QuarantineError';
  constructor(
    readonly reason: QuarantineReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A read that failed because of this worker, not the file (out of file handles or memory, an I/O error): the batch
 * fails and Temporal retries it, instead of caching a good image as bad.
 */
export class TransientReadError extends Error {
  override name = 'TransientReadError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Error codes that say something about the file itself; any other code is a failure of the worker. */
const FILE_CODES: Record<string, QuarantineReason> = { ENOENT: 'unreadable', EACCES: 'unreadable', EPERM: 'unreadable', ELOOP: 'unreadable', EISDIR: 'not_a_file' };

/** libvips failing for want of memory, threads or files: says nothing about the image, even inside a loader's message. */
const WORKER_FAILURE = /out of memory|cannot allocate|unable to create thread|too many open files|resource temporarily unavailable|input file is missing/i;

/** sharp's and libvips' messages about an image's own bytes (loaders prefix theirs with their name). */
const CONTENT_FAILURES: [RegExp, QuarantineReason][] = [
  [/pixel limit/i, 'too_large'],
  [/buffer is empty/i, 'empty'],
  [/unsupported image format/i, 'not_an_image'],
  [/premature end|end of stream|end of file|unexpected end|truncated|short read|not enough data/i, 'truncated'],
  [/corrupt header|^\w+load(_buffer|_source)?: |^\w+2vips: |^Vips(Jpeg|ForeignLoad\w*): |^(webp|heif|gif|png|jpeg|tiff): |^source: bad seek|XML parse error/i, 'corrupt'],
];

/**
 * The reason a read or decode failure is reported under when it is about the file; undefined when it is a failure of
 * this worker (an errno the file does not explain, sharp out of memory, a reader thread that died), which must fail
 * the batch so that it is retried.
 */
export function quarantineReasonOf(err: unknown): QuarantineReason | undefined {
  if (err instanceof QuarantineError) return err.reason;
  if (err instanceof ArtifactPathError) return 'outside_root';
  if (err instanceof TransientReadError) return undefined;
  const code = (err as NodeJS.ErrnoException).code;
  if (code) return FILE_CODES[code];
  const message = (err as Error).message ?? String(err);
  if (WORKER_FAILURE.test(message)) return undefined;
  return CONTENT_FAILURES.find(([pattern]) => pattern.test(message))?.[1];
}

/**
 * sharp's own words about an image's bytes, not libvips' error buffer: the same whatever else runs meanwhile. Three of
 * CONTENT_FAILURES' messages, matched whole here, since a libvips message may contain them.
 */
const SHARPS_OWN = /^Input (buffer contains unsupported image format|image exceeds pixel limit|Buffer is empty)$/;

/** What sharp says when libvips left it no message. */
const NO_REASON = /^\s*(Unknown error)?\s*$/;

/** Whether a sharp failure among other operations may carry their message, or none (see sharp-gate), not its own. */
export function mayBeAnotherFailure(err: unknown): boolean {
  return !SHARPS_OWN.test(err instanceof Error ? err.message : String(err));
}

/**
 * The error an image fails with when sharp cannot decode it even alone: sharp's, unless that gives no reason; then the
 * file is taken for corrupt, sharp's words kept.
 */
export function failureDecodedAlone(err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  return NO_REASON.test(message) ? new QuarantineError('corrupt', `sharp cannot decode it and gives no reason ("${message}")`) : err;
}
