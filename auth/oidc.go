package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DiscoverJWKS finds the JWK Set of an OpenID Connect provider and returns a
// JWKS for it (see NewJWKS). It reads issuer + "/.well-known/openid-configuration"
// (OpenID Connect Discovery 1.0 §4; a trailing "/" of issuer is removed
// first), checks that the document's "issuer" is exactly issuer (§4.3: a
// provider may not speak for another issuer), and takes its "jwks_uri".
//
// issuer must be an https URL without query or fragment; http is accepted
// too, for tests and private networks, and only then may jwks_uri be http:
// behind an https issuer, jwks_uri must be https.
//
// cfg configures the JWKS; leave cfg.URL empty. cfg.Client and cfg.MaxBytes
// also apply to the discovery request, which ctx bounds. Unlike NewJWKS,
// DiscoverJWKS fails when the provider cannot be reached or its document is
// wrong, so that a mistake in configuration shows at start-up.
func DiscoverJWKS(ctx context.Context, issuer string, cfg JWKSConfig) (*JWKS, error) {
	if cfg.URL != "" {
		return nil, errors.New("auth: DiscoverJWKS: JWKSConfig.URL must be empty; discovery finds it")
	}
	iu, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("auth: DiscoverJWKS: issuer: %w", err)
	}
	if (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" || iu.RawQuery != "" || iu.ForceQuery || iu.Fragment != "" || iu.User != nil {
		return nil, fmt.Errorf("auth: DiscoverJWKS: issuer %q: want an https URL without user info, query or fragment", iu.Redacted())
	}
	if iu.Scheme == "http" && !cfg.AllowInsecureHTTP && !loopbackHost(iu.Hostname()) {
		return nil, fmt.Errorf("auth: DiscoverJWKS: issuer %q: plain http lets anyone on the path swap the signing keys; use https or set JWKSConfig.AllowInsecureHTTP", iu.Redacted())
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	fail := func(err error) (*JWKS, error) {
		return nil, fmt.Errorf("auth: DiscoverJWKS: %s: %w", where, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: DiscoverJWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("status %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, cfg.MaxBytes+1))
	if err != nil {
		return fail(err)
	}
	if int64(len(body)) > cfg.MaxBytes {
		return fail(fmt.Errorf("response larger than %d bytes", cfg.MaxBytes))
	}
	doc, err := jwkMembers(body)
	if err != nil {
		return fail(err)
	}
	got, ok, err := stringMember(doc, "issuer")
	if err != nil {
		return fail(err)
	}
	if !ok {
		return fail(errors.New(`"issuer": missing`))
	}
	if got != issuer {
		return fail(fmt.Errorf(`"issuer": %q is not the configured issuer %q (OpenID Connect Discovery §4.3)`, got, issuer))
	}
	jwksURI, ok, err := stringMember(doc, "jwks_uri")
	if err != nil {
		return fail(err)
	}
	if !ok || jwksURI == "" {
		return fail(errors.New(`"jwks_uri": missing`))
	}
	ju, err := url.Parse(jwksURI)
	if err != nil || ju.Host == "" || !(ju.Scheme == "https" || ju.Scheme == "http" && iu.Scheme == "http") {
		return fail(fmt.Errorf(`"jwks_uri": %q: want an absolute https URL`, jwksURI))
	}
	cfg.URL = jwksURI
	return NewJWKS(cfg)
}
