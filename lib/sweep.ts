import { seededRandom } from './random';

/** A search space: dotted paths into a trial's input (`training.learningRate`) and the values to try. */
export type SearchSpace = Record<string, unknown[]>;
export type Assignment = Record<string, unknown>;

/** Every combination of the space's values, in a stable order (the last key varies fastest). */
export function gridAssignments(space: SearchSpace): Assignment[] {
  return Object.entries(space).reduce<Assignment[]>(
    (combos, [path, values]) => combos.flatMap((combo) => values.map((value) => ({ ...combo, [path]: value }))),
    [{}],
  );
}

/** `count` assignments drawn independently and uniformly from the space with a seeded generator. */
export function randomAssignments(space: SearchSpace, count: number, seed: number): Assignment[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () =>
    Object.fromEntries(Object.entries(space).map(([path, values]) => [path, values[Math.floor(random() * values.length)]])),
  );
}

/** A deep copy of `base` with each dotted path of the assignment set to its value. */
export function applyAssignment<T extends object>(base: T, assignment: Assignment): T {
  // JSON, not structuredClone: this runs in the workflow sandbox, and inputs are JSON anyway.
  const result = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  for (const [path, value] of Object.entries(assignment)) {
    const keys = path.split('.');
    let node = result;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[keys.at(-1)!] = value;
  }
  return result as T;
}
