import { loadClientConnectConfig } from '@temporalio/envconfig';

/**
 * Connection settings the Temporal way: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, TLS variables
 * and profiles of the Temporal config file (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`). Defaults to localhost:7233.
 */
export function temporalConnectConfig() {
  const config = loadClientConnectConfig();
  return {
    connectionOptions: { ...config.connectionOptions, address: config.connectionOptions.address ?? 'localhost:7233' },
    namespace: config.namespace ?? 'default',
  };
}
