/**
 * Makes `require('@tensorflow/tfjs-node')` work without tfjs-node's own download of libtensorflow.
 *
 * Where the normal install worked (the binding loads), nothing runs. Otherwise the TensorFlow C runtime is taken
 * from the `tensorflow-cpu` wheel on PyPI (its libtensorflow_cc exports the C API), placed where tfjs-node expects
 * it (deps/lib, deps/include), and the binding is built from source. Everything heavy is cached per user, outside
 * the clone, so a fresh clone reuses it and a second run downloads and builds nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { userCacheDir } from './cache';

export const TENSORFLOW_WHEEL_VERSION = process.env.TENSORFLOW_WHEEL_VERSION ?? '2.18.1';
const projectRoot = resolve(__dirname, '..', '..');
const packageDir = join(projectRoot, 'node_modules', '@tensorflow', 'tfjs-node');
const NATIVE_LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
/** Link names the binding is linked against, and the file name tfjs-node's installer takes as "already present". */
const LIBRARY_ALIASES: Record<string, string> = {
  'libtensorflow.so': 'libtensorflow_cc.so.2',
  'libtensorflow.so.2.9.1': 'libtensorflow_cc.so.2',
  'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
  'libtensorflow_framework.so.2.9.1': 'libtensorflow_framework.so.2',
};
const HEADER_PREFIXES = [
  'tensorflow/include/tensorflow/c/',
  'tensorflow/include/tensorflow/core/platform/',
  'tensorflow/include/tsl/',
  'tensorflow/include/xla/tsl/',
];

function log(message: string): void {
  console.error(`[tensorflow] ${message}`);
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed with exit code ${result.status}`);
}

/** True when tfjs-node loads and runs on its native backend, checked in a fresh process. */
export function nativeBackendLoads(): boolean {
  const probe = "const tf=require('@tensorflow/tfjs-node');process.exit(tf.getBackend()==='tensorflow'?0:3)";
  const result = spawnSync(process.execPath, ['-e', probe], {
    cwd: projectRoot,
    stdio: 'ignore',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  return result.status === 0;
}

function tfjsNodeVersion(): string {
  const lock = JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8'));
  return lock.packages['node_modules/@tensorflow/tfjs-node'].version;
}

/** npm removes an optional dependency whose install script failed; bring it back from the lockfile without scripts. */
function restorePackage(): void {
  if (existsSync(join(packageDir, 'package.json'))) return;
  log('restoring @tensorflow/tfjs-node from the lockfile (its own download of libtensorflow is skipped)');
  run('npm', ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: projectRoot });
}

function downloadWheel(wheelDir: string): string {
  const find = () => readdirSync(wheelDir).find((f) => f.startsWith(`tensorflow_cpu-${TENSORFLOW_WHEEL_VERSION}-`));
  mkdirSync(wheelDir, { recursive: true });
  const cached = find();
  if (cached) return join(wheelDir, cached);
  log(`downloading tensorflow-cpu==${TENSORFLOW_WHEEL_VERSION} from PyPI (download only, nothing is installed)`);
  run('python3', [
    '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--platform', 'manylinux2014_x86_64',
    '--python-version', '3.11', '-d', wheelDir, `tensorflow-cpu==${TENSORFLOW_WHEEL_VERSION}`,
  ]);
  const downloaded = find();
  if (!downloaded) throw new Error(`pip did not leave a tensorflow-cpu ${TENSORFLOW_WHEEL_VERSION} wheel in ${wheelDir}`);
  return join(wheelDir, downloaded);
}

/** Extracts the C runtime and headers from the wheel into `<cache>/tensorflow/<version>` (atomically). */
function ensureRuntime(): string {
  const target = join(userCacheDir(), 'tensorflow', TENSORFLOW_WHEEL_VERSION);
  if (existsSync(join(target, 'lib', 'libtensorflow.so'))) return target;
  const wheel = downloadWheel(join(userCacheDir(), 'wheels'));
  const staging = `${target}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  log(`extracting the TensorFlow C runtime from ${wheel}`);
  const extract = `
import sys, zipfile, os, shutil
wheel, out, prefixes, libs = sys.argv[1], sys.argv[2], sys.argv[3].split(','), sys.argv[4].split(',')
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith('/'):
            continue
        if any(name.startswith(p) for p in prefixes):
            dest = os.path.join(out, 'include', name[len('tensorflow/include/'):])
        elif name in ['tensorflow/' + lib for lib in libs]:
            dest = os.path.join(out, 'lib', os.path.basename(name))
        else:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(name) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
`;
  run('python3', ['-c', extract, wheel, staging, HEADER_PREFIXES.join(','), NATIVE_LIBRARIES.join(',')]);
  for (const [alias, real] of Object.entries(LIBRARY_ALIASES)) symlinkSync(real, join(staging, 'lib', alias));
  verifyExportedSymbols(staging);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  renameSync(staging, target);
  return target;
}

/** Every TF_/TFE_ C API function the binding calls must be exported by the wheel's libraries. */
function verifyExportedSymbols(runtimeDir: string): void {
  const headers = readTree(join(runtimeDir, 'include', 'tensorflow', 'c'), '.h');
  const declared = new Set([...headers.matchAll(/TF_CAPI_EXPORT\s+extern\s+[^;(]*?\b(TFE?_\w+)\s*\(/g)].map((m) => m[1]!));
  const bindingSources = readTree(join(packageDir, 'binding'), '');
  const referenced = [...new Set([...bindingSources.matchAll(/\b(TFE?_\w+)\s*\(/g)].map((m) => m[1]!))].filter((s) => declared.has(s));
  const exported = new Set<string>();
  for (const lib of NATIVE_LIBRARIES) {
    const table = execFileSync('nm', ['-D', '--defined-only', join(runtimeDir, 'lib', lib)], { encoding: 'utf8', maxBuffer: 1 << 28 });
    for (const line of table.split('\n')) {
      const name = line.split(' ')[2]?.split('@')[0];
      if (name) exported.add(name);
    }
  }
  const missing = referenced.filter((s) => !exported.has(s));
  if (referenced.length === 0) throw new Error('found no TF_/TFE_ calls in the tfjs-node binding sources; cannot verify the runtime');
  if (missing.length > 0) {
    throw new Error(`tensorflow-cpu ${TENSORFLOW_WHEEL_VERSION} does not export ${missing.length} C API symbols the binding needs: ${missing.join(', ')}`);
  }
  log(`all ${referenced.length} TF_/TFE_ symbols the binding calls are exported`);
}

/** Concatenated text of every file under `dir` whose name ends with `suffix`. */
function readTree(dir: string, suffix: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
    .join('\n');
}

function nodeGypScript(): string {
  const candidates = [process.env.npm_config_node_gyp];
  const npmCli = process.env.npm_execpath ?? execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  if (npmCli) candidates.push(join(dirname(dirname(realpathSync(npmCli))), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error('node-gyp was not found (it ships with npm); install it with `npm install -g node-gyp`.');
  return found;
}

function bindingPathInPackage(): string {
  const napi = Math.min(8, Number(process.versions.napi));
  return join(packageDir, 'lib', `napi-v${napi}`, 'tfjs_binding.node');
}

/** Builds the binding from source against the runtime, or reuses the one built earlier for the same versions. */
function ensureBinding(): void {
  const key = `${tfjsNodeVersion()}-tf${TENSORFLOW_WHEEL_VERSION}-napi${Math.min(8, Number(process.versions.napi))}`;
  const cached = join(userCacheDir(), 'tfjs-node', key, 'tfjs_binding.node');
  const installed = bindingPathInPackage();
  if (!existsSync(cached)) {
    log('building the tfjs-node binding from source with node-gyp');
    const nodePrefix = dirname(dirname(process.execPath));
    const nodedir = existsSync(join(nodePrefix, 'include', 'node', 'node.h')) ? [`--nodedir=${nodePrefix}`] : [];
    run(process.execPath, [join(projectRoot, 'node_modules', '@mapbox', 'node-pre-gyp', 'bin', 'node-pre-gyp'), 'rebuild',
      '--build-from-source', '--build-latest-napi-version-only', ...nodedir], {
      cwd: packageDir,
      env: { ...process.env, npm_config_node_gyp: nodeGypScript() },
    });
    if (!existsSync(installed)) throw new Error(`node-gyp finished but ${installed} is missing`);
    mkdirSync(dirname(cached), { recursive: true });
    copyFileSync(installed, `${cached}.partial`);
    renameSync(`${cached}.partial`, cached);
    return;
  }
  mkdirSync(dirname(installed), { recursive: true });
  copyFileSync(cached, installed);
}

function linkRuntimeIntoPackage(runtimeDir: string): void {
  const deps = join(packageDir, 'deps');
  rmSync(deps, { recursive: true, force: true });
  symlinkSync(runtimeDir, deps);
}

export function provisionTensorFlow(): void {
  if (process.env.TFJS_BACKEND === 'cpu') {
    log('TFJS_BACKEND=cpu: native TensorFlow not provisioned');
    return;
  }
  if (nativeBackendLoads()) {
    log('@tensorflow/tfjs-node loads on the native backend; nothing to do');
    return;
  }
  restorePackage();
  const runtime = ensureRuntime();
  linkRuntimeIntoPackage(runtime);
  ensureBinding();
  if (!nativeBackendLoads()) {
    throw new Error('@tensorflow/tfjs-node still does not load after provisioning; run `ldd ' + bindingPathInPackage() + '` to see what is missing.');
  }
  log(`@tensorflow/tfjs-node ready on TensorFlow ${TENSORFLOW_WHEEL_VERSION} (runtime in ${runtime})`);
}

if (require.main === module) {
  try {
    provisionTensorFlow();
  } catch (err) {
    console.error(`[tensorflow] ${(err as Error).message}`);
    process.exit(1);
  }
}
