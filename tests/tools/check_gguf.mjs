// check_gguf.mjs: an independent GGUF reader (npm @huggingface/gguf) lists the
// tensors of a GGUF file mpoc wrote; they must match an expectation.
//
// usage: node check_gguf.mjs FILE.gguf EXPECT.json
// EXPECT.json is `mpoc inspect --json` output of FILE (or of the model it was
// converted from, with the dtypes it was converted to): for each tensor,
// name, dtype name and row-major shape. The package reports GGUF order
// (ne[0] first), so its shape is reversed before comparing.
import { readFileSync } from "node:fs";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";

const [file, expectPath] = process.argv.slice(2);
if (!file || !expectPath) {
  console.error("usage: node check_gguf.mjs FILE.gguf EXPECT.json");
  process.exit(2);
}
const expect = JSON.parse(readFileSync(expectPath, "utf8")).files[0].tensors;
const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
let bad = 0;
const fail = (msg) => { console.error(`check_gguf: ${file}: ${msg}`); bad++; };
if (Number(metadata.version) !== 3) fail(`version ${metadata.version}`);
if (tensorInfos.length !== expect.length)
  fail(`${tensorInfos.length} tensors, expected ${expect.length}`);
const byName = new Map(tensorInfos.map((t) => [t.name, t]));
for (const e of expect) {
  const t = byName.get(e.name);
  if (!t) { fail(`tensor ${e.name} missing`); continue; }
  const type = GGMLQuantizationType[t.dtype];
  if (type !== e.dtype) fail(`${e.name}: type ${type}, expected ${e.dtype}`);
  const shape = t.shape.map(Number).reverse();
  if (JSON.stringify(shape) !== JSON.stringify(e.shape))
    fail(`${e.name}: shape [${shape}], expected [${e.shape}]`);
}
if (bad) process.exit(1);
console.log(`check_gguf: ${file}: ${tensorInfos.length} tensors match (version 3, alignment ${metadata["general.alignment"] ?? 32})`);
