// Run ONNX models with ONNX Runtime on .npy inputs and write the outputs as
// .npy files: the reference runtime of lowbit's interop tests.
//
//   node run.js model.onnx input.npy out.npy [out2.npy ...]
//   node run.js --jobs jobs.json    (jobs: [{"model", "input", "outputs": [...]}, ...])
//
// Inputs must be float32 C-order arrays; one file per model output is
// written (float32, little-endian, .npy version 1). ONNX Runtime runs with
// one thread and all graph optimizations disabled, so results depend only
// on its kernels. Install once with `npm install --ignore-scripts` here.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readNpy(path) {
  const b = fs.readFileSync(path);
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = b[6];
  let hlen, off;
  if (major === 1) { hlen = b.readUInt16LE(8); off = 10; } else { hlen = b.readUInt32LE(8); off = 12; }
  const header = b.toString('latin1', off, off + hlen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${path}: malformed header ${header}`);
  if (descr[1] !== '<f4') throw new Error(`${path}: dtype ${descr[1]}, want <f4`);
  if (fortran[1] !== 'False') throw new Error(`${path}: Fortran order is not supported`);
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s !== '').map(Number);
  const n = dims.reduce((a, d) => a * d, 1);
  const start = off + hlen;
  if (b.length !== start + 4 * n) throw new Error(`${path}: shape [${dims}] needs ${4 * n} data bytes, file has ${b.length - start}`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = b.readFloatLE(start + 4 * i);
  return { dims, data };
}

function writeNpy(path, dims, data) {
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  dict = dict + ' '.repeat(total - 10 - dict.length - 1) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(dict.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
  const tmp = `${path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat([head, Buffer.from(dict, 'latin1'), body]));
  fs.renameSync(tmp, path);
}

async function runJob(job) {
  const session = await ort.InferenceSession.create(job.model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled',
  });
  if (session.inputNames.length !== 1) throw new Error(`${job.model}: ${session.inputNames.length} inputs, want 1`);
  if (session.outputNames.length !== job.outputs.length) {
    throw new Error(`${job.model}: ${session.outputNames.length} outputs, ${job.outputs.length} files given`);
  }
  const x = readNpy(job.input);
  const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) });
  session.outputNames.forEach((name, i) => {
    const y = res[name];
    if (y.type !== 'float32') throw new Error(`${job.model}: output ${name} has type ${y.type}`);
    writeNpy(job.outputs[i], y.dims, y.data);
  });
}

(async () => {
  const args = process.argv.slice(2);
  let jobs;
  if (args[0] === '--jobs' && args.length === 2) {
    jobs = JSON.parse(fs.readFileSync(args[1], 'utf8'));
  } else if (args.length >= 3) {
    jobs = [{ model: args[0], input: args[1], outputs: args.slice(2) }];
  } else {
    console.error('usage: node run.js model.onnx input.npy out.npy [...] | node run.js --jobs jobs.json');
    process.exit(2);
  }
  let failed = 0;
  for (const job of jobs) {
    try {
      await runJob(job);
    } catch (e) {
      failed++;
      console.error(`${job.model}: ${e.message}`);
    }
  }
  process.exit(failed ? 1 : 0);
})();
