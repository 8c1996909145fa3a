// Package report turns the JSON results of lowbit commands (train, eval,
// quantize, finetune, simulate, bench and demo, each run with --json) into
// one self-contained HTML page: a summary table of every run, training
// curves, per-layer quantization tables with SQNR bar charts, fine-tuning
// phases and residual-stream errors, accelerator energy charts and
// benchmark throughput. Each file's kind is recognized by its fields; a
// file that is not a lowbit result, or is not valid JSON, is listed with
// its path and the reason instead of failing the report. When NAME.cmd sits
// next to NAME.json (as the experiment scripts write it), the page shows
// that command line so that a reader can reproduce the result. Charts are
// inline SVG drawn by the small LineChart and BarChart helpers; the page
// needs no external assets and no JavaScript.
package report
