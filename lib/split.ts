export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

/**
 * Assigns an image to a split from the sha256 of its content, so the assignment never depends on which other images
 * exist: adding images to a dataset never moves existing ones between splits.
 */
export function splitOf(contentSha256: string, validationFraction: number, testFraction: number): Split {
  const position = parseInt(contentSha256.slice(0, 8), 16) / 0x1_0000_0000;
  if (position < testFraction) return 'test';
  if (position < testFraction + validationFraction) return 'validation';
  return 'train';
}
