// ONNX Runtime peer for one model (2 intra-op threads), in its own process
// so that the peak RSS belongs to it; same protocol as
// ../shared/peers/ort_bench.js: batch 256, one warm-up run, 5 timed runs.
// Usage: NODE_PATH=…/node_modules node ort_peer.js MODEL.onnx C H W
//   → JSON {"infer_img_s": …, "peak_rss_mb": …}
const ort = require('onnxruntime-node');
(async () => {
  const [file, ...dims] = process.argv.slice(2);
  const shp = dims.map(Number);
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const B = 256, n = B * shp[0] * shp[1] * shp[2];
  const x = new ort.Tensor('float32', Float32Array.from({ length: n }, () => Math.random()), [B, ...shp]);
  await s.run({ x });
  const R = 5, t0 = process.hrtime.bigint();
  for (let i = 0; i < R; i++) await s.run({ x });
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss = process.resourceUsage().maxRSS / 1024; // KiB → MiB
  console.log(JSON.stringify({ infer_img_s: +(B * R / sec).toFixed(1), peak_rss_mb: +rss.toFixed(1) }));
})().catch((e) => { console.error(e); process.exit(1); });
