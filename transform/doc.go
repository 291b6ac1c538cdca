// Package transform will hold gatekit's request and reply transformers:
// field mapping, removal, renaming and enrichment on bytes with tidwall/gjson
// and tidwall/sjson, header, path and query rewriting, and JSON to XML
// conversion. Each is a gateway.RequestTransformer or
// gateway.ResponseTransformer.
package transform
