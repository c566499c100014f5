import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import wabt from 'wabt';

/** Assembles every WebAssembly text module (`.wat`) under lib/ into a `.wasm` beside its compiled JavaScript in dist/. */
async function main(): Promise<void> {
  const root = join(__dirname, '..', '..');
  const assembler = await wabt();
  for (const source of await watFiles(join(root, 'lib'))) {
    const module = assembler.parseWat(source, await readFile(source, 'utf8'), { simd: true });
    try {
      module.validate();
      const target = join(root, 'dist', relative(root, source)).replace(/\.wat$/, '.wasm');
      await writeFile(target, module.toBinary({}).buffer);
    } finally {
      module.destroy();
    }
  }
}

async function watFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.wat')).map((e) => join(e.parentPath, e.name));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
