package transform

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkFieldOp is the cost of each of BenchmarkBodyApply's operations
// alone, on a document already checked and indexed (with a Delete of a
// missing member after it, so that the run has an index): where the time
// of a Body goes, beside the scan and the result's allocation.
func BenchmarkFieldOp(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"id":"ord-8412","customer":{"name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},"internal":{"shard":7,"trace":"a1b2c3"},"items":[`)
	for i := 0; sb.Len() < 1024-120; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"sku":"SKU-%05d","name":"Widget number %d","qty":%d,"price":%d.99}`, i, i, i%7+1, i%90+10)
	}
	sb.WriteString(`],"note":"leave at the door","createdAt":"2025-11-25T13:50:00Z"}`)
	doc := []byte(sb.String())
	ops := map[string]Op{
		"set":     Set("meta.source", String("gateway")),
		"rename":  Rename("customer.name", "customer.fullName"),
		"delete":  Delete("internal"),
		"default": Default("currency", String("EUR")),
		"field":   Set("meta.orderId", Field("id")),
	}
	var ix0 rootIndex
	scanJSON(doc, &ix0)
	for name, op := range ops {
		body, err := NewBody(op, Delete("zzz"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			w := getScratch()
			b.ReportAllocs()
			for b.Loop() {
				w.ix.ok, w.ix.open, w.ix.close = true, ix0.open, ix0.close
				w.ix.members = append(w.ix.members[:0], ix0.members...)
				out, _ := body.apply(doc, &w.e, w)
				w.spare = out[:0]
			}
		})
	}
}
