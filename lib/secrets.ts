/**
 * Environment variables that hold credentials or name files that do: Temporal's connection settings (API key, TLS
 * keys and certificates, the config file that may hold both), the payload key file, and anything named like a
 * credential (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, *_PASSWORD...). Project settings (TEMPORAL_ML_*) are not,
 * except the key file.
 */
const CREDENTIAL_NAME = /SECRET|PASSWORD|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL/i;

export function isSecretVariable(name: string): boolean {
  if (name === 'TEMPORAL_ML_ENCRYPTION_KEY_FILE') return true;
  if (name.startsWith('TEMPORAL_') && !name.startsWith('TEMPORAL_ML_')) return true;
  return CREDENTIAL_NAME.test(name);
}

/** `env` without its secrets: what a child process that never talks to Temporal or a store gets. */
export function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !isSecretVariable(name)));
}
