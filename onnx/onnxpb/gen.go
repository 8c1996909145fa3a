// Package onnxpb holds the Go types of the ONNX protobuf schema, generated
// from onnx.proto by protoc-gen-go. The generated file is committed, so a
// build needs no protoc; run `go generate ./onnx/onnxpb/` after changing
// onnx.proto (needs protoc and protoc-gen-go v1.36.12 on PATH).
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
