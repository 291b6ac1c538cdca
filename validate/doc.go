// Package validate checks requests before they reach an upstream: JSON
// Schema for bodies (with santhosh-tekuri/jsonschema v6), rules for path,
// query and header parameters, and the media type and size of bodies. It
// can also hold upstream replies to a schema.
//
// A Validator is built once from a Config and is a gateway.Validator:
//
//	//go:embed schemas
//	var schemas embed.FS
//
//	v, err := validate.New(validate.Config{
//		Route: "create-payment",
//		Query: []validate.Param{{Name: "dry_run", Type: validate.TypeBool}},
//		Body:  validate.Schema{File: "schemas/payment.json"},
//		FS:    schemas,
//	})
//	if err != nil {
//		return err // names the route, and the file and JSON pointer of a bad schema
//	}
//	payments := gateway.NewPipeline(upstream, gateway.Validate(v))
//
// # What a client sees
//
// Every refusal is a problem document (RFC 9457) whose "errors" member
// lists every fault, so a client can fix them all at once:
//
//   - 400 for parameters, with {"parameter": "limit", "in": "query",
//     "message": "must be at most 100"} for each broken rule;
//   - 415 for a media type the route does not accept, with Accept-Post or
//     Accept-Patch naming the ones it does;
//   - 413 for a body over the limit;
//   - 400 for a body that is not JSON or nests too deeply, with the byte
//     offset, line and column: {"message": "...", "offset": 17, "line": 2,
//     "column": 9};
//   - 422 for a body that breaks the schema, with {"pointer":
//     "/payee/email", "message": "must be a valid email: missing @"} for
//     each violation.
//
// Messages never quote the values the client sent (a property name at
// most, cut short), nor the body.
//
// # Order and cost
//
// Parameters are checked first, then the media type and the size, and the
// body last, so a request with a bad query string is refused before its
// body is read. Only a route with a Body schema reads the body; the others
// stream it to the upstream. A body is first scanned for its nesting
// depth (a byte scan that costs a few percent of decoding and cannot
// overflow the stack) and for numbers beyond 1000 digits or an exponent
// beyond ±1000 (400: the exact value of 1e999999, 13 bytes, would take the
// schema library tens of milliseconds to build), then decoded once, with
// numbers kept exact, and validated, unless the fast path (below) accepts
// it first.
//
// # Schemas
//
// A Schema is inline JSON or a file, in an fs.FS (such as an embed.FS) or
// on disk. Drafts 4, 6, 7, 2019-09 and 2020-12 are supported; 2020-12 is
// the default for schemas without $schema. "format" is asserted (email,
// uuid, date-time, ipv4, ipv6, uri and the rest; see Config.Draft). $refs
// between the application's own files work; a $ref to any other URL fails
// New with ErrRemoteRef unless Config.AllowRemote lists its prefix, so a
// schema can never make the gateway read other files or call other hosts.
// All of it is compiled by New: a request never loads anything.
//
// # Fast path
//
// New also looks at each compiled schema, and when it keeps to a simple
// subset, a valid body is checked in one scan of its bytes, without
// decoding it into a tree and without allocating: for a small object
// schema that is several times faster than decoding and validating. The
// subset is any nesting of these keywords:
//
//   - type, enum and const (of strings, numbers, booleans and null);
//   - minLength, maxLength and pattern (the library's own compiled regexp);
//   - minimum, maximum, exclusiveMinimum, exclusiveMaximum and multipleOf,
//     whose values are exact fractions of 64-bit integers;
//   - properties, required, additionalProperties true or false (not a
//     schema), minProperties and maxProperties, with at most 64 names;
//   - items (one schema for every item), minItems and maxItems;
//   - the schemas true and false, and annotations (title, default, and
//     formats and content keywords the library does not assert).
//
// A schema with anything else ($ref, allOf, anyOf, oneOf, not, if,
// patternProperties, propertyNames, dependent*, unevaluated*, prefixItems,
// uniqueItems, contains, an asserted format) is validated the usual way
// throughout. The fast path only ever accepts: a body it would refuse, or
// cannot judge exactly (a member name given twice, a number beyond 19
// significant digits), is decoded and validated as before, so refusals
// are the same, word for word, with it or without. Nothing in the API
// turns it on or off or reports it; BenchmarkFastPath measures it.
package validate
