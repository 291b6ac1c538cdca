package proxy

import "github.com/gatekit/gatekit/gateway"

// callStatus is the status an upstream call ended with, for observers: the
// reply's, or the one its error answers, or 0 for none.
func callStatus(resp *gateway.Response, err error) int {
	if err != nil {
		if p, _ := gateway.ProblemFor(err); p != nil {
			return p.Status
		}
		return 0
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}
