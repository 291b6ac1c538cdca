package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// IPFilterConfig configures the IPFilter stage. At least one of Allow and
// Deny must have an entry.
//
// Each entry is a CIDR prefix ("10.0.0.0/8", "2001:db8::/32") or a single
// address ("192.0.2.7", "2001:db8::1"). Host bits after the prefix length
// are ignored ("10.1.2.3/8" is "10.0.0.0/8"). IPv4-mapped IPv6 entries
// ("::ffff:192.0.2.0/120") are taken as the IPv4 networks they map, as
// client addresses are; addresses with a zone are refused.
type IPFilterConfig struct {
	// Allow lists the networks that may use the route; when it has any
	// entry, every other address is refused.
	Allow []string
	// Deny lists networks refused even when Allow covers them.
	Deny []string
}

// IPFilter returns a Stage that admits or refuses a request by the client's
// address, Request.ClientIP, which honours Options.TrustedProxies: behind a
// trusted proxy it is the address the proxy forwarded, so configure the
// proxies rather than listing them here.
//
// Deny wins over Allow; a non-empty Allow refuses everything it does not
// cover. A request whose client address is unknown (an in-process request
// without RemoteAddr) is refused. A refusal is a 403 problem that names
// neither the lists nor the address.
//
// Lookups cost one map probe per distinct prefix length in a list (at most
// 33 for IPv4 and 129 for IPv6), whatever the number of entries, so lists
// of many thousands of networks are fine.
func IPFilter(c IPFilterConfig) (Stage, error) {
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		return nil, errors.New("ipfilter: both Allow and Deny are empty")
	}
	allow, err := newPrefixSet("Allow", c.Allow)
	if err != nil {
		return nil, err
	}
	deny, err := newPrefixSet("Deny", c.Deny)
	if err != nil {
		return nil, err
	}
	defaultDeny := len(c.Allow) > 0
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			a := req.ClientIP()
			if !a.IsValid() || deny.contains(a) || (defaultDeny && !allow.contains(a)) {
				return nil, &Error{Status: http.StatusForbidden, Detail: "the client address may not use this route"}
			}
			return next.Serve(ctx, req)
		})
	}, nil
}

// A prefixSet holds networks keyed by their masked prefix, with the prefix
// lengths in use per address family, longest first.
type prefixSet struct {
	m     map[netip.Prefix]struct{}
	bits4 []int
	bits6 []int
}

func newPrefixSet(field string, entries []string) (*prefixSet, error) {
	s := &prefixSet{m: make(map[netip.Prefix]struct{}, len(entries))}
	for i, e := range entries {
		p, err := parseIPEntry(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("ipfilter: %s[%d] %q: %w", field, i, e, err)
		}
		s.m[p] = struct{}{}
		if p.Addr().Is4() {
			if !slices.Contains(s.bits4, p.Bits()) {
				s.bits4 = append(s.bits4, p.Bits())
			}
		} else if !slices.Contains(s.bits6, p.Bits()) {
			s.bits6 = append(s.bits6, p.Bits())
		}
	}
	// Longest first: specific entries tend to be the ones that match.
	slices.Sort(s.bits4)
	slices.Reverse(s.bits4)
	slices.Sort(s.bits6)
	slices.Reverse(s.bits6)
	return s, nil
}

func parseIPEntry(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, errors.New("not a CIDR prefix")
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, errors.New("not an IP address or CIDR prefix")
		}
		if a.Zone() != "" {
			return p, errors.New("an address with a zone cannot be matched")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func (s *prefixSet) contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	bits := s.bits6
	if a.Is4() {
		bits = s.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err == nil {
			if _, ok := s.m[p]; ok {
				return true
			}
		}
	}
	return false
}
