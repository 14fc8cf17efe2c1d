// Package ingest is Spoor's door: the receivers that take spans in (the collector's
// OTLP receiver, gRPC and HTTP, protobuf and JSON, gzip; the contrib Zipkin receiver,
// v1 JSON and Thrift, v2 JSON and protobuf) and what happens at the door — request and
// decompression size limits, refusing bad input with a reason, and counting it.
//
// Receivers hand spans on synchronously: a sender is acknowledged only when every
// consumer behind the receiver has returned, which for Spoor means the store committed.
//
// The door also puts the protobuf bytes of each OTLP request (the decompressed HTTP
// body, the gRPC message) into the context the pipeline is called with
// (internal/otlpbody), valid during the call: the sampler copies the spans it holds out
// of them instead of encoding them again. For gRPC that takes a codec in front of
// pdata's, registered when this package is initialized (grpcbody.go).
package ingest
