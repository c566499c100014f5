import { devServerOptions, startDevServer } from './dev-server';

/** `npm run server`: the Temporal dev server in the foreground; Ctrl-C stops it, and its SQLite file keeps the runs. */
const options = devServerOptions();
console.log(`Temporal on ${options.ip}:${options.port}, Web UI on http://localhost:${options.uiPort}, data in ${options.dbFilename}` +
  (options.codecEndpoint ? `; the Web UI decodes payloads through ${options.codecEndpoint}` : ''));
const server = startDevServer(options);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.kill(signal));
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
