import { accessSync, constants } from 'node:fs';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';

export interface TemporalConnectConfig {
  connectionOptions: ReturnType<typeof toClientOptions>['connectionOptions'] & { address: string };
  namespace: string;
  /** The settings as loaded (TLS files as paths, not contents), to say in messages where each one came from. */
  profile: ClientConfigProfile;
}

/** Something wrong with the connection settings or the server's answer to them: its message says what to change, and a stack would add nothing. */
export class TemporalConnectionError extends Error {
  constructor(message: string, readonly retryable = false) {
    super(message);
    this.name = 'TemporalConnectionError';
  }
}

/** The settings that name TLS files, each with the environment variable that sets it (a config profile sets the same under `tls`). */
export const TLS_FILE_SETTINGS = [
  { key: 'serverCACert', what: 'server CA certificate', variable: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH' },
  { key: 'clientCert', what: 'client certificate', variable: 'TEMPORAL_TLS_CLIENT_CERT_PATH' },
  { key: 'clientKey', what: 'client key', variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH' },
] as const;

/**
 * Connection settings the Temporal way: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, TLS variables
 * and profiles of the Temporal config file (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`). Defaults to localhost:7233.
 */
export function temporalConnectConfig(): TemporalConnectConfig {
  const profile = loadClientConfigProfile();
  let config: ReturnType<typeof toClientOptions>;
  try {
    config = toClientOptions(profile);
  } catch (err) {
    throw new TemporalConnectionError(`Cannot read a TLS file of the Temporal connection settings: ${unreadableTlsFiles(profile).join('; ') || (err as Error).message.split('\n')[0]}`);
  }
  return {
    connectionOptions: { ...config.connectionOptions, address: config.connectionOptions.address ?? 'localhost:7233' },
    namespace: config.namespace ?? 'default',
    profile,
  };
}

/** Which TLS files cannot be read, by variable and error code (not by path: a key's path is nobody else's business). */
function unreadableTlsFiles(profile: ClientConfigProfile): string[] {
  return TLS_FILE_SETTINGS.flatMap(({ key, what, variable }) => {
    const source = profile.tls?.[key];
    if (!source || !('path' in source)) return [];
    try {
      accessSync(source.path, constants.R_OK);
      return [];
    } catch (err) {
      return [`${variable} (the ${what}, or tls.${variable.slice('TEMPORAL_TLS_'.length).toLowerCase()} of the config profile): ${(err as NodeJS.ErrnoException).code}`];
    }
  });
}
