// Package validate will hold gatekit's request validators: JSON Schema for
// bodies (santhosh-tekuri/jsonschema v6), rules for path, query and header
// parameters, and content-type and size rules. Each is a gateway.Validator
// whose failures are 400, 413, 415 or 422 problems listing every violation.
package validate
