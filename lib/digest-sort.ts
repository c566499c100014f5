/** Hex digits of a line's leading digest that make its key: 32 bits, beside a 21-bit line number, exact in a double. */
const KEY_DIGITS = 8;
const LINE_NUMBERS = 2 ** 21;
const LEADING_DIGEST = /^[0-9a-f]{8}/;

/**
 * `lines` in the order `[...lines].sort()` gives, for lines that each begin with a lowercase hex digest (content
 * hashes, whose first digits almost never repeat): one native sort of numbers, each its line's first 8 digits and its
 * line number packed into a double, then lines sharing those digits compared whole. For 70,000 lines that takes a
 * quarter to a half of the time comparing the strings does. 2^21 lines or more, or lines that do not all begin with 8
 * hex digits, are sorted as strings.
 */
export function sortByLeadingDigest(lines: string[]): string[] {
  const count = lines.length;
  if (count >= LINE_NUMBERS || !lines.every((line) => LEADING_DIGEST.test(line))) return [...lines].sort();
  const packed = new Float64Array(count);
  for (let i = 0; i < count; i++) packed[i] = parseInt(lines[i]!.slice(0, KEY_DIGITS), 16) * LINE_NUMBERS + i;
  packed.sort();
  const keyOf = (i: number) => Math.floor(packed[i]! / LINE_NUMBERS);
  const lineOf = (i: number) => lines[packed[i]! % LINE_NUMBERS]!;
  const sorted: string[] = new Array(count);
  for (let start = 0; start < count; ) {
    let end = start + 1;
    while (end < count && keyOf(end) === keyOf(start)) end++;
    if (end - start === 1) sorted[start] = lineOf(start);
    else {
      const group = Array.from({ length: end - start }, (_, k) => lineOf(start + k)).sort();
      group.forEach((line, k) => (sorted[start + k] = line));
    }
    start = end;
  }
  return sorted;
}
