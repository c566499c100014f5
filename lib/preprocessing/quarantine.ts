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

const TRANSIENT_CODES = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', 'EBUSY', 'ENOSPC']);

/** A failure of the worker, not of the file: the batch fails and is retried instead of quarantining a good image. */
export function isTransient(err: unknown): boolean {
  return TRANSIENT_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

/** The reason for a read or decode failure, from the error code or sharp's (libvips') message. */
export function quarantineReasonOf(err: unknown): QuarantineReason {
  if (err instanceof QuarantineError) return err.reason;
  if (err instanceof ArtifactPathError) return 'outside_root';
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ELOOP' || code === 'EIO') return 'unreadable';
  if (code === 'EISDIR') return 'not_a_file';
  const message = (err as Error).message ?? String(err);
  if (/pixel limit/i.test(message)) return 'too_large';
  if (/empty/i.test(message)) return 'empty';
  if (/unsupported image format/i.test(message)) return 'not_an_image';
  if (/premature end|end of stream|truncated|unexpected end|short read|not enough data/i.test(message)) return 'truncated';
  return 'corrupt';
}
