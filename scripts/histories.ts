import type { History } from '@temporalio/common/lib/proto-utils';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Recorded histories, one `<name>.json` each (`trainModel`, `distributedTrain-async`), written by `npm run record:histories`. */
export const HISTORIES_DIR = join(__dirname, '..', '..', 'test', 'fixtures', 'histories');

// @temporalio/common's historyToJSON and historyFromJSON reflect with their own copy of protobufjs, and this install
// has several (the top-level one is @grpc/proto-loader's protobufjs 7): both then throw "type must be a Type".
// The copy @temporalio/proto loads itself reads and writes the same ProtoJSON, whatever npm's layout.
const protojson = require(require.resolve('protobufjs/ext/protojson', { paths: [require.resolve('@temporalio/proto')] }));
// The generated types lack the reflection methods the patched root has.
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

/** ProtoJSON, as `temporal workflow show --output json` writes it. */
export function historyToJson(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)), null, 2) + '\n';
}

export function readHistory(path: string): History {
  return protojson.fromJson(historyType, JSON.parse(readFileSync(path, 'utf8')), { ignoreUnknownFields: true });
}

/** Each recorded run's workflow ID is its name's: replay needs the ID the history was recorded under. */
export const recordedWorkflowId = (name: string) => `recorded-${name}`;
export const recordingName = (workflowId: string) => workflowId.slice('recorded-'.length);

/** The workflow type a recorded history ran. */
export const workflowTypeOf = (history: History) => history.events![0]!.workflowExecutionStartedEventAttributes!.workflowType!.name!;

/** The recorded histories by name. */
export function recordedHistories(): Map<string, string> {
  const files = readdirSync(HISTORIES_DIR).filter((file) => file.endsWith('.json')).sort();
  return new Map(files.map((file) => [basename(file, '.json'), join(HISTORIES_DIR, file)]));
}
