// Builds the web page into ../static/dist: hashed, minified ES modules and CSS under assets/,
// and index.html pointing at them. Usage: `npm run build` (or `npm run watch` while editing).
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, "../static/dist");
const watch = process.argv.includes("--watch");

/** esbuild options: one entry (the viewer is split off and loaded on demand). */
const options = {
  entryPoints: { app: path.join(here, "src/main.js") },
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2022"],
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  outdir: path.join(outDir, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
};

/** Write a gzip twin (``name.gz``) of each script and stylesheet; the server sends it when accepted. */
async function writeGzip(metafile) {
  for (const file of Object.keys(metafile.outputs)) {
    if (!/\.(js|css)$/.test(file)) continue;
    const data = await readFile(file);
    if (data.length >= 1024) await writeFile(`${file}.gz`, gzipSync(data, { level: 9 }));
  }
}

/** Write index.html with the built entry's script and stylesheet names filled in. */
async function writeIndex(metafile) {
  const outputs = Object.entries(metafile.outputs);
  const entry = outputs.find(([, o]) => o.entryPoint && o.entryPoint.endsWith("src/main.js"));
  if (!entry) throw new Error("the build produced no entry script");
  const [jsPath, meta] = entry;
  const rel = (p) => path.relative(outDir, path.resolve(p)).split(path.sep).join("/");
  const template = await readFile(path.join(here, "src/index.html"), "utf8");
  const html = template
    .replace("%SCRIPT%", `/${rel(jsPath)}`)
    .replace("%STYLE%", meta.cssBundle ? `/${rel(meta.cssBundle)}` : "");
  await writeFile(path.join(outDir, "index.html"), html);
  const digest = createHash("sha256").update(html).digest("hex").slice(0, 12);
  console.log(`built ${rel(jsPath)} and index.html (${digest}) into ${outDir}`);
}

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
if (watch) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [{ name: "index", setup: (b) => b.onEnd((r) => r.metafile && writeIndex(r.metafile)) }],
  });
  await ctx.watch();
} else {
  const result = await esbuild.build(options);
  await writeGzip(result.metafile);
  await writeIndex(result.metafile);
}
