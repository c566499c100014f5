/**
 * How a store spells references to its artifacts: a pattern that finds its URIs in text, and the store-relative key
 * a found URI names (undefined when it is not one of this store's artifacts).
 */
export interface ReferenceSyntax {
  pattern: RegExp;
  keyOf(uri: string): string | undefined;
}

/** The artifact keys referenced in a piece of text (JSON, HTML, a decoded payload). */
export function referencesInText(syntax: ReferenceSyntax, text: string, found = new Set<string>()): Set<string> {
  const pattern = new RegExp(syntax.pattern.source, syntax.pattern.flags.includes('g') ? syntax.pattern.flags : `${syntax.pattern.flags}g`);
  for (const match of text.matchAll(pattern)) {
    const key = syntax.keyOf(match[0]);
    if (key !== undefined) found.add(key);
  }
  return found;
}

/**
 * The artifact keys referenced anywhere in a JSON-like value: strings are scanned, and so are byte arrays (decoded as
 * UTF-8), which is how Temporal's payloads (inputs, results, heartbeat details) hold their JSON.
 */
export function referencesInValue(syntax: ReferenceSyntax, value: unknown, found = new Set<string>()): Set<string> {
  const pending: unknown[] = [value];
  const seen = new Set<object>();
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current === 'string') referencesInText(syntax, current, found);
    else if (current instanceof Uint8Array) referencesInText(syntax, Buffer.from(current.buffer, current.byteOffset, current.byteLength).toString('utf8'), found);
    else if (current !== null && typeof current === 'object' && !seen.has(current)) {
      seen.add(current);
      pending.push(...(Array.isArray(current) ? current : Object.values(current)));
    }
  }
  return found;
}
