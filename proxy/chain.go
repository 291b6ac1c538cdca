package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatekit/gatekit/gateway"
)

// SequenceReply says what a sequence answers once every step succeeded.
type SequenceReply int

const (
	// MergeSteps answers every step's reply merged into one object, each
	// under its step's Key or at the top level, as an aggregate does.
	MergeSteps SequenceReply = iota
	// LastStep answers the last step's reply alone (under its Key, if it
	// has one); the earlier steps only provide values for later ones.
	LastStep
)

// A SequenceStep is one call of a sequence. Its fields mean what those of
// an AggregateBackend mean, and its templates (Path and Body) may also
// refer to the reply of an earlier step.
type SequenceStep struct {
	// Name identifies the step in references and failure reports. It is
	// required, unique within the sequence, made of letters, digits, '_'
	// and '-', and not "query".
	Name string

	// Upstream serves the step's sub-request.
	Upstream gateway.Handler

	// Method is the sub-request's method; "" means GET, or POST when Body
	// is set.
	Method string

	// Path is the sub-request's path and optional query, as in
	// AggregateBackend. Besides {param} and {query.name}, it may hold
	// {step.member}, a member of the reply of an earlier step: in
	// "/customers/{customer.id}/accounts", the member "id" of the step
	// called "customer". The member is a path written like
	// AggregateBackend.Key ("customer.address.city"). A string is used
	// unquoted, a number or boolean as written; the value is
	// percent-encoded where it goes. A member that is missing or null, or
	// is an object or array, fails the sequence with a 502 that names the
	// step and the reference; so does a value that is empty, "." or ".."
	// in the path.
	Path string

	// Body is a JSON template for the sub-request's body, as in
	// AggregateBackend; a {step.member} reference in it is replaced by the
	// member's JSON value as it is (an object stays an object).
	Body string

	// Headers are the client request's header fields copied to the
	// sub-request, as in AggregateBackend.
	Headers []string

	// Key is where the step's reply goes in the reply, as in
	// AggregateBackend; with LastStep only the last step may have one.
	Key string

	// Fields keeps only these members of the step's reply in the reply
	// (later steps still see the whole reply); with LastStep only the
	// last step may have them.
	Fields []string

	// Timeout bounds the step's call; 0 means only the sequence's Timeout
	// applies.
	Timeout time.Duration
}

// SequenceConfig configures a sequence. Only Steps is required; every
// other zero field means the documented default.
type SequenceConfig struct {
	// Steps are called one after another, in this order.
	Steps []SequenceStep

	// Timeout bounds the whole sequence: 0 means DefaultAggregateTimeout;
	// a negative value means no limit other than the steps' own.
	Timeout time.Duration

	// Reply says what to answer; the zero value is MergeSteps.
	Reply SequenceReply

	// MaxReplyBytes bounds each step's reply; 0 means
	// DefaultMaxReplyBytes.
	MaxReplyBytes int64
}

// A SequenceUpstream calls its steps one after another, each able to use
// values from the replies before it (fetch a customer, then the customer's
// accounts by its id), and answers a 200 with their JSON replies merged,
// or with the last one's. Build it with Sequence; it is safe for
// concurrent use.
//
// A step fails for the same reasons an aggregate's backend does (see
// AggregateUpstream), and its failure ends the sequence: the answer is a
// 502 problem (504 for a timeout) whose detail names the step and whose
// "failed" member is a report like an aggregate's, with "step" for
// "backend". A reference a reply cannot satisfy answers 502 as well.
type SequenceUpstream struct {
	calls    []aggCall
	timeout  time.Duration // 0: none
	maxReply int64
	last     bool
	simple   bool // every Key is one member name: the reply is built by hand
}

var _ gateway.Handler = (*SequenceUpstream)(nil)

// Sequence checks cfg, compiles its templates and returns an upstream
// that runs its steps in order. A reference to a step that is not an
// earlier one is an error here, not on a request. Errors name the step
// and the field at fault.
func Sequence(cfg SequenceConfig) (*SequenceUpstream, error) {
	if len(cfg.Steps) == 0 {
		return nil, errors.New("proxy: SequenceConfig.Steps: at least one step is required")
	}
	if cfg.Reply != MergeSteps && cfg.Reply != LastStep {
		return nil, fmt.Errorf("proxy: SequenceConfig.Reply: unknown reply %d", cfg.Reply)
	}
	s := &SequenceUpstream{last: cfg.Reply == LastStep, simple: true}
	var err error
	if s.timeout, err = aggTimeout(cfg.Timeout); err != nil {
		return nil, fmt.Errorf("proxy: SequenceConfig.Timeout: %w", err)
	}
	if s.maxReply, err = aggMaxReply(cfg.MaxReplyBytes); err != nil {
		return nil, fmt.Errorf("proxy: SequenceConfig.MaxReplyBytes: %w", err)
	}
	steps := make(map[string]int, len(cfg.Steps))
	var keys []aggPath
	for i, st := range cfg.Steps {
		final := i == len(cfg.Steps)-1
		c, err := aggCompileCall(aggCallSpec{
			name: st.Name, up: st.Upstream, method: st.Method, path: st.Path, body: st.Body,
			headers: st.Headers, key: st.Key, fields: st.Fields, timeout: st.Timeout,
		}, steps)
		switch _, dup := steps[st.Name]; {
		case err != nil:
		case dup:
			err = errors.New("Name: another step has this name")
		case st.Name == "query":
			err = errors.New(`Name: "query" is reserved for {query.name} references`)
		case s.last && !final && (st.Key != "" || st.Fields != nil):
			err = errors.New("Key and Fields: only the last step's reply is answered with LastStep, so they would have no effect")
		case c.key.set != "":
			err = aggKeyConflict(c.key, keys)
			keys = append(keys, c.key)
		}
		if err != nil {
			return nil, fmt.Errorf("proxy: SequenceConfig.Steps[%d] %q: %w", i, st.Name, err)
		}
		steps[st.Name] = i
		c.needObject = c.key.set == "" && !s.last
		if !s.last || final {
			s.simple = s.simple && len(c.key.segs) == 1
		}
		s.calls = append(s.calls, c)
	}
	return s, nil
}

// Serve runs the steps in order and returns the reply. It reads req but
// does not change it.
func (s *SequenceUpstream) Serve(ctx context.Context, req *gateway.Request) (*gateway.Response, error) {
	wctx := ctx
	if s.timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	n := len(s.calls)
	results := make([]aggResult, n)
	replies := make([][]byte, n)
	for i := range s.calls {
		c := &s.calls[i]
		var x aggExpanded
		if err := c.expand(&x, req, replies); err != nil {
			return nil, err
		}
		c.fetch(wctx, &x, req, s.maxReply, &results[i])
		if err := ctx.Err(); err != nil {
			return nil, err // the client has gone
		}
		if results[i].reason != "" {
			return nil, aggProblem("step", s.calls[i:i+1], results[i:i+1], "the sequence failed at step ")
		}
		replies[i] = results[i].raw
	}
	calls, res := s.calls, results
	if s.last {
		calls, res = s.calls[n-1:], results[n-1:]
	}
	var body []byte
	if s.last && calls[0].key.set == "" {
		body = res[0].value
	} else {
		body = aggMerge(calls, res, s.simple)
	}
	return gateway.NewResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, body), nil
}
