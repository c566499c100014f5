import { serveChildTask } from '../../lib/child-task';

/** A child task that answers the values of the environment variables it is asked for. */
serveChildTask(async (names: string[]) => Object.fromEntries(names.map((name) => [name, process.env[name]])));
