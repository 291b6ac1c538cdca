// Package transform reshapes requests on their way to an upstream and
// replies on their way back: JSON body fields (with tidwall/gjson and
// tidwall/sjson, on bytes, without decoding the body into maps), headers,
// the path and the query, enrichment with the request ID, the client
// address and the caller's identity, JSON⇄XML conversion, status mapping and
// templated bodies.
//
// A transform is a list of operations checked once, at start-up:
//
//	in, err := transform.Request(transform.Config{Ops: []transform.Op{
//		transform.AssignRequestID(transform.RequestIDConfig{}),
//		transform.SetHeader("X-User-Id", transform.Subject()),
//		transform.RewritePath("/accounts/{id}", "/v2/customers/{id}/account"),
//		transform.Rename("name", "fullName"),
//		transform.Set("customer.id", transform.Param("id")),
//		transform.Delete("internal"),
//	}})
//	out, err := transform.Response(transform.Config{Ops: []transform.Op{
//		transform.SetHeader("X-Request-Id", transform.RequestID()),
//		transform.MapStatus(http.StatusNotFound, http.StatusNoContent),
//		transform.Keep("id", "fullName", "items.#.sku"),
//	}})
//	route := gateway.NewPipeline(upstream, in.Stage(), out.Stage())
//
// A bad operation fails Request or Response with an error that names its
// index in the list, its kind and the path or field at fault.
//
// # Paths
//
// Body paths name a value in a JSON document: keys separated by '.', as in
// "customer.address.city". A key of digits also indexes an array
// ("items.0.sku"). A segment "#" means every element of an array:
// "items.#.price" reads the price of every item, and an operation that
// writes such a path works in every element. The characters . \ * ? # @ | !
// in a key must be escaped with '\': the key "a.b" is written "a\.b" (in Go
// source, `a\.b`), the key "50%?" is "50%\?". They are reserved because
// gjson gives them meaning (wildcards, queries, modifiers, pipes); other
// characters, Unicode included, are written as they are. Keys cannot be
// empty. A path is compiled once; one that does not parse, or uses gjson
// syntax this package does not support, fails at construction.
//
// # The body
//
// Operations that read or write the body (field operations, a header set
// from a Field, StatusWhen, Template reading .Body, JSON⇄XML) read it once,
// when the first of them runs, and write it back once, with the right
// Content-Length. A transform whose operations never touch the body (headers,
// path, query, MapStatus) does not read it: the request body streams to the
// upstream and the reply streams to the client, as on a route without
// transforms.
//
// A body the operations need as JSON must be JSON: a Content-Type other than
// application/json or a +json type, or bytes that are not valid JSON, fail a
// request with 400 and a reply with 502, and the body is left as it was. An
// empty body is left empty: the operations skip it. A compressed body
// (Content-Encoding) cannot be reshaped: a request transform on the route
// can remove Accept-Encoding so that the backend replies uncompressed. Body
// operations on replies run on 2xx replies only, unless Config.AllStatuses
// is set, so error documents pass through untouched.
//
// # Enrichment
//
// Values (Param, Query, Header, Claim, Subject, ClientIP, RequestID) carry
// what the gateway knows about a request into headers, the query or the
// body. SetHeader, SetQuery and Set remove what the client sent under the
// same name first, and remove it even when the value is missing (no
// principal, say), so a client cannot supply a value the gateway vouches
// for. AssignRequestID keeps a client's X-Request-Id only when told to
// trust it.
//
// # JSON and XML
//
// JSONToXML and XMLToJSON convert bodies for a backend that speaks XML by
// the rules of XMLCodec, under which documents round-trip exactly; XMLToJSON
// refuses DOCTYPEs and bounds size, depth and element count.
//
// # Templates
//
// Template builds a new JSON body with text/template, printing every value
// as JSON so that request data cannot break out of the document; see
// TemplateData.
package transform
