package gateway

import "context"

// A Handler serves one gateway request and returns the response to send back.
//
// An upstream (an HTTP backend, an in-process function, a mock) is a Handler at
// the end of a pipeline; every stage wraps one. A Handler reports failure by
// returning an error, never by writing to the client: the pipeline turns the
// error into a problem+json reply in one place. A nil *Response with a nil
// error is answered with 204 No Content.
type Handler interface {
	Serve(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts an ordinary function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Serve calls f(ctx, req).
func (f HandlerFunc) Serve(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// A Stage wraps a Handler with one step of request processing, the way net/http
// middleware wraps an http.Handler. Stages are applied once, when a pipeline is
// built; the returned Handler is what runs per request.
type Stage func(next Handler) Handler

// Chain returns upstream wrapped in stages, so that stages[0] runs first.
func Chain(upstream Handler, stages ...Stage) Handler {
	h := upstream
	for i := len(stages) - 1; i >= 0; i-- {
		if stages[i] != nil {
			h = stages[i](h)
		}
	}
	return h
}
