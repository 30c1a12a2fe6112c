// Package metricstest reads a /metrics endpoint in tests, with
// Prometheus's own parser of the text format.
package metricstest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url, a /metrics endpoint, and parses what it serves.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, res.Status)
	}
	if ct := expfmt.ResponseFormat(res.Header); ct.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("scrape %s: Content-Type %q, want the text format", url, res.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return fams
}

// matching returns the metrics of name whose labels include every pair of
// labels ("name", "value", ...).
func (f Families) matching(name string, labels []string) []*dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// Value is the sum of the counters or gauges name whose labels include the
// pairs given ("result", "sent"); 0 when there is none.
func (f Families) Value(name string, labels ...string) float64 {
	var v float64
	for _, m := range f.matching(name, labels) {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}

// Count is the number of observations of the histograms name whose labels
// include the pairs given.
func (f Families) Count(name string, labels ...string) uint64 {
	var n uint64
	for _, m := range f.matching(name, labels) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// Sum is the sum of the observations of the histograms name whose labels
// include the pairs given.
func (f Families) Sum(name string, labels ...string) float64 {
	var s float64
	for _, m := range f.matching(name, labels) {
		s += m.GetHistogram().GetSampleSum()
	}
	return s
}

// Moved is what a counter or gauge should have moved by between two
// scrapes: Value's difference for Name with Labels.
type Moved struct {
	Name   string
	Labels []string
	Want   float64
}

// Observed is how many observations a histogram should have gained
// between two scrapes: Count's difference for Name with Labels.
type Observed struct {
	Name   string
	Labels []string
	Want   uint64
}

// CheckDeltas fails t for each metric in moved and observed that did not
// change by exactly its Want from before to after.
func CheckDeltas(t testing.TB, before, after Families, moved []Moved, observed []Observed) {
	t.Helper()
	for _, m := range moved {
		if got := after.Value(m.Name, m.Labels...) - before.Value(m.Name, m.Labels...); got != m.Want {
			t.Errorf("%s%v moved by %v, want %v", m.Name, m.Labels, got, m.Want)
		}
	}
	for _, o := range observed {
		if got := after.Count(o.Name, o.Labels...) - before.Count(o.Name, o.Labels...); got != o.Want {
			t.Errorf("%s%v observed %d times, want %d", o.Name, o.Labels, got, o.Want)
		}
	}
}
