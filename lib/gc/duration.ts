const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** A user error in a command-line option: the message names the option and what to write instead. */
export class OptionError extends Error {
  override name = 'OptionError';
}

/** Milliseconds of a duration written as a number and a unit (`90s`, `30m`, `12h`, `7d`, `2w`). */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim());
  if (!match) throw new OptionError(`${option} ${JSON.stringify(text)}: write a number and a unit, one of s, m, h, d, w (for example 7d or 12h).`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
