package gateway

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// StatusClientClosedRequest is the status the access log gives a request
// whose client went away before a reply was written (nginx's 499).
const StatusClientClosedRequest = 499

// AccessLogConfig configures an access log (NewAccessLog).
type AccessLogConfig struct {
	// Logger receives one Info line per request ("request"), Warn for
	// 5xx; nil means slog.Default().
	Logger *slog.Logger
	// Sample is the share of requests answered below 400 that are logged,
	// from 0 to 1; 0 means 1 (all). Requests answered 400 and above are
	// always logged.
	Sample float64
	// Headers are request header fields to log, by name, under
	// "header.<name>". A field whose name marks a credential is logged as
	// "[redacted]" even when listed (see Redact).
	Headers []string
	// Redact names more header fields and query parameters whose values
	// are logged as "[redacted]". Names that mark credentials always are:
	// Authorization, Cookie, key, sig, code, and any name holding token,
	// secret, signature, credential, password, passwd, session, auth, jwt,
	// assertion, apikey or cookie, compared in lower case without '-',
	// '_' and '.' (X-Auth-Token, accessToken, X-Amz-Signature,
	// client_assertion, api-key).
	Redact []string
}

// NewAccessLog returns an Observer that logs one structured line per
// request: method, host, route, path and query (credentials redacted),
// status, bytes in and out, duration, the upstream calls with their
// targets and durations, the principal's subject, the request ID, the
// stages' notes (such as rate-limit decisions) and the error answered. It
// never logs header values it was not asked for, nor tokens or API keys.
func NewAccessLog(cfg AccessLogConfig) Observer {
	l := &accessLog{logger: cfg.Logger, sample: cfg.Sample, redact: map[string]bool{}}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if l.sample <= 0 || l.sample > 1 {
		l.sample = 1
	}
	for _, k := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "key", "sig", "code", "pass"} {
		l.redact[normalizeSecretName(k)] = true
	}
	for _, k := range cfg.Redact {
		l.redact[normalizeSecretName(k)] = true
	}
	for _, h := range cfg.Headers {
		l.headers = append(l.headers, http.CanonicalHeaderKey(h))
	}
	return l
}

type accessLog struct {
	logger  *slog.Logger
	sample  float64
	headers []string
	redact  map[string]bool // lower-case header and query names
}

func (l *accessLog) Begin(ctx context.Context, req *Request) context.Context { return ctx }

func (l *accessLog) End(ctx context.Context, req *Request, rec *Record) {
	status := rec.StatusFor(req)
	if status < 400 && l.sample < 1 && rand.Float64() >= l.sample {
		return
	}
	r := req.HTTP
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("route", routePattern(req.route)),
		slog.String("path", r.URL.Path),
	)
	if r.URL.RawQuery != "" {
		attrs = append(attrs, slog.String("query", l.query(r.URL.RawQuery)))
	}
	attrs = append(attrs,
		slog.Int("status", status),
		slog.Int64("bytes_in", rec.BytesIn),
		slog.Int64("bytes_out", rec.BytesOut),
		slog.Duration("duration", rec.Duration),
	)
	if ip := req.ClientIP(); ip.IsValid() {
		attrs = append(attrs, slog.String("client", ip.String()))
	}
	if req.id != "" {
		attrs = append(attrs, slog.String("request_id", req.id))
	}
	if p := req.Principal; p != nil && p.Subject != "" {
		attrs = append(attrs, slog.String("subject", p.Subject))
	}
	if calls := req.UpstreamCalls(); len(calls) > 0 {
		ups := make([]any, 0, len(calls))
		for i, c := range calls {
			g := []any{slog.String("target", c.Target), slog.Duration("duration", c.Duration)}
			if c.Upstream != "" {
				g = append(g, slog.String("kind", c.Upstream))
			}
			if c.Status != 0 {
				g = append(g, slog.Int("status", c.Status))
			}
			if c.Err != nil {
				g = append(g, slog.String("error", c.Err.Error()))
			}
			ups = append(ups, slog.Group(strconv.Itoa(i), g...))
		}
		attrs = append(attrs, slog.Group("upstream", ups...))
	}
	for _, n := range req.Notes() {
		attrs = append(attrs, slog.String(n.Key, n.Value))
	}
	for _, h := range l.headers {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		if l.secret(h) {
			v = "[redacted]"
		}
		attrs = append(attrs, slog.String("header."+h, v))
	}
	if rec.Err != nil {
		p, _ := ProblemFor(rec.Err)
		attrs = append(attrs, slog.String("error", p.Error()))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	l.logger.LogAttrs(ctx, level, "request", attrs...)
}

// secretWords are parts of names that mark a value as a credential,
// matched anywhere in a header or query parameter name once it is lower
// case without '-', '_', '.' or "[]": X-Auth-Token, accessToken,
// X-Amz-Signature, X-Amz-Credential, client_assertion, session_id,
// private_token, api-key.
var secretWords = []string{"token", "secret", "signature", "credential", "password", "passwd", "session", "auth", "jwt", "assertion", "apikey", "cookie"}

// normalizeSecretName folds a name for matching: lower case, without
// '-', '_', '.' and a trailing "[]".
func normalizeSecretName(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), "[]")
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' {
			return -1
		}
		return r
	}, name)
}

// secret reports whether the value of the header field or query parameter
// name must not be logged.
func (l *accessLog) secret(name string) bool {
	n := normalizeSecretName(name)
	if l.redact[n] {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// query returns raw with the values of credential-like parameters
// replaced.
func (l *accessLog) query(raw string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(part, "=")
		key, err := url.QueryUnescape(name)
		if err != nil {
			key = name
		}
		if hasValue && l.secret(key) {
			b.WriteString(name)
			b.WriteString("=[redacted]")
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

// routePattern names a route in logs and metrics: its pattern, never the
// raw path, so the number of distinct values stays that of the routes.
func routePattern(r *Route) string {
	switch {
	case r == nil:
		return ""
	case r.Name != "":
		return r.Name
	case r.Path != "":
		return r.Path
	}
	return r.PathPrefix
}
