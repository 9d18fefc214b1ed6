package controller

import (
	"strconv"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// Metrics are the controller's Prometheus metrics: per Gate, its verdicts,
// its Ready condition and how long verifications take; for the process,
// the registry requests made by host and status, and the verdict cache's
// hits and misses.
type Metrics struct {
	verdicts  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ready     *prometheus.GaugeVec
	collector prometheus.Collector
}

// NewMetrics makes the metrics; register Collectors() with the manager's
// registry (controller-runtime's metrics.Registry).
func NewMetrics(requests *verify.RequestCounter, cache *verify.Cache) *Metrics {
	return &Metrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pregate_gate_verdicts_total",
			Help: "Verdicts reached by Gate, whether the revision was allowed, and the reason.",
		}, []string{"namespace", "name", "allowed", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pregate_gate_reconcile_duration_seconds",
			Help:    "How long a Gate's reconciliation (fetch, render, verify) took.",
			Buckets: prometheus.ExponentialBucketsRange(0.01, 600, 12),
		}, []string{"namespace", "name"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pregate_gate_ready",
			Help: "1 when the Gate's Ready condition has the given status.",
		}, []string{"namespace", "name", "status"}),
		collector: &statsCollector{requests: requests, cache: cache},
	}
}

// Collectors returns every collector to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.verdicts, m.duration, m.ready, m.collector}
}

func (m *Metrics) record(obj *v1alpha1.Gate, start time.Time) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(obj.Namespace, obj.Name).Observe(time.Since(start).Seconds())
	status := "Unknown"
	if c := conditions.Get(obj, meta.ReadyCondition); c != nil {
		status = string(c.Status)
	}
	for _, s := range []string{"True", "False", "Unknown"} {
		v := 0.0
		if s == status {
			v = 1
		}
		m.ready.WithLabelValues(obj.Namespace, obj.Name, s).Set(v)
	}
}

func (m *Metrics) verdict(obj *v1alpha1.Gate, v gate.Verdict) {
	if m == nil {
		return
	}
	m.verdicts.WithLabelValues(obj.Namespace, obj.Name, strconv.FormatBool(v.Allowed), v.Reason).Inc()
}

// forget drops a deleted Gate's series.
func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	gate := prometheus.Labels{"namespace": namespace, "name": name}
	m.ready.DeletePartialMatch(gate)
	m.verdicts.DeletePartialMatch(gate)
	m.duration.DeleteLabelValues(namespace, name)
}

// statsCollector reads the registry and cache counters at scrape time.
type statsCollector struct {
	requests *verify.RequestCounter
	cache    *verify.Cache
}

var (
	requestsDesc = prometheus.NewDesc("pregate_registry_requests_total",
		"Registry requests made, by registry host and HTTP status (0: no answer).", []string{"host", "code"}, nil)
	cacheHitsDesc = prometheus.NewDesc("pregate_verdict_cache_hits_total",
		"Verifications answered from the verdict cache.", nil, nil)
	cacheMissesDesc = prometheus.NewDesc("pregate_verdict_cache_misses_total",
		"Verifications the verdict cache could not answer.", nil, nil)
	cacheEntriesDesc = prometheus.NewDesc("pregate_verdict_cache_entries",
		"Verdicts held in the cache.", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- cacheHitsDesc
	ch <- cacheMissesDesc
	ch <- cacheEntriesDesc
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.requests != nil {
		for host, codes := range c.requests.Snapshot().ByHost {
			for code, n := range codes {
				ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), host, strconv.Itoa(code))
			}
		}
	}
	if c.cache != nil {
		s := c.cache.Stats()
		ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(s.Hits))
		ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(s.Misses))
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(s.Entries))
	}
}
