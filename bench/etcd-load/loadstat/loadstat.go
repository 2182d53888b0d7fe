// Package loadstat is the part the two reference load generators
// (bench/etcd-load, bench/nats-load) share with each other: running a fixed
// number of operations from many goroutines, and reporting the result in
// the same text summary and one-line JSON as raftbus-bench, so that
// bench/compare.sh can put the three side by side.
package loadstat

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one finished workload run.
type Result struct {
	System   string // "etcd" or "nats"
	Workload string
	Clients  int
	Conns    int
	Total    int64 // operations (or events) the run set out to complete
	Errors   int64 // of those, how many failed or never arrived
	// Duration is the wall time the throughput is computed over.
	Duration time.Duration
	// Latencies of the operations (or deliveries) that succeeded.
	Lat []time.Duration
}

// Throughput is succeeded operations per second.
func (r *Result) Throughput() float64 {
	s := r.Duration.Seconds()
	if s <= 0 {
		return 0
	}
	return float64(r.Total-r.Errors) / s
}

// percentile by nearest rank of an ascending slice, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Print writes the result as "json" (one line, the format compare.sh reads)
// or "text" (a human summary with a latency histogram).
func (r *Result) Print(w io.Writer, format string) {
	sort.Slice(r.Lat, func(i, j int) bool { return r.Lat[i] < r.Lat[j] })
	p := func(q float64) float64 { return percentile(r.Lat, q) }
	if format == "json" {
		fmt.Fprintf(w, `{"system":"%s","workload":"%s","clients":%d,`+
			`"conns":%d,"total":%d,"errors":%d,"duration_s":%.3f,`+
			`"throughput":%.1f,"latency_ms":{"min":%.3f,"p50":%.3f,`+
			`"p90":%.3f,"p99":%.3f,"p999":%.3f,"max":%.3f}}`+"\n",
			r.System, r.Workload, r.Clients, r.Conns, r.Total, r.Errors,
			r.Duration.Seconds(), r.Throughput(), p(0), p(0.5), p(0.9),
			p(0.99), p(0.999), p(1))
		return
	}
	fmt.Fprintf(w, "Summary (%s %s, %d clients over %d conns):\n",
		r.System, r.Workload, r.Clients, r.Conns)
	fmt.Fprintf(w, "  Total:\t%d (%d errors)\n", r.Total, r.Errors)
	fmt.Fprintf(w, "  Duration:\t%.4f s\n", r.Duration.Seconds())
	fmt.Fprintf(w, "  Throughput:\t%.1f /s\n", r.Throughput())
	fmt.Fprintf(w, "  Latency ms:\tmin %.3f  p50 %.3f  p90 %.3f  p99 %.3f"+
		"  p99.9 %.3f  max %.3f\n", p(0), p(0.5), p(0.9), p(0.99),
		p(0.999), p(1))
	printHistogram(w, r.Lat)
}

// printHistogram draws ten equal-width buckets between min and max.
func printHistogram(w io.Writer, sorted []time.Duration) {
	const buckets = 10
	const barWidthMax = 40
	if len(sorted) == 0 {
		return
	}
	lo, hi := sorted[0], sorted[len(sorted)-1]
	step := (hi - lo) / buckets
	if step <= 0 {
		step = 1
	}
	var counts [buckets]int
	for _, d := range sorted {
		b := int((d - lo) / step)
		if b >= buckets {
			b = buckets - 1
		}
		counts[b]++
	}
	peak := 0
	for _, c := range counts {
		if c > peak {
			peak = c
		}
	}
	fmt.Fprintln(w, "Response time histogram (ms):")
	for i, c := range counts {
		bar := 0
		if peak > 0 {
			bar = c * barWidthMax / peak
		}
		fmt.Fprintf(w, "  %9.3f [%8d]\t|%s\n",
			ms(lo+step*time.Duration(i+1)), c, bars(bar))
	}
}

func bars(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '*'
	}
	return string(b)
}

// Runner hands out operation numbers 0..Total-1 to Clients goroutines and
// records each operation's latency. Rate > 0 paces the start of
// operations to that many per second over all clients.
type Runner struct {
	Clients int
	Total   int64
	Rate    float64
}

// Run calls op(client, i) for every i; it returns the latencies of the
// operations that returned nil, the number that failed, and the wall time
// from the first start to the last finish. A progress line goes to stderr
// every second while it runs.
func (rn Runner) Run(op func(client int, i int64) error) ([]time.Duration, int64, time.Duration) {
	var next, done, failed int64
	lats := make([][]time.Duration, rn.Clients)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go progress(stop, &done, rn.Total)
	start := time.Now()
	for c := 0; c < rn.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if i >= rn.Total {
					return
				}
				if rn.Rate > 0 {
					at := start.Add(time.Duration(float64(i) / rn.Rate * 1e9))
					time.Sleep(time.Until(at))
				}
				t0 := time.Now()
				err := op(c, i)
				if err != nil {
					atomic.AddInt64(&failed, 1)
				} else {
					lats[c] = append(lats[c], time.Since(t0))
				}
				atomic.AddInt64(&done, 1)
			}
		}(c)
	}
	wg.Wait()
	dur := time.Since(start)
	close(stop)
	return Merge(lats), failed, dur
}

// Merge concatenates per-goroutine latency slices.
func Merge(parts [][]time.Duration) []time.Duration {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// progress prints "done/total" on stderr once a second until stop closes.
func progress(stop <-chan struct{}, done *int64, total int64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fmt.Fprintf(os.Stderr, "progress: %d/%d\n",
				atomic.LoadInt64(done), total)
		}
	}
}

// Clock gives times as nanoseconds since the program started on the
// monotonic clock, so that a timestamp carried inside a message by one
// goroutine can be compared with the time another goroutine receives it.
type Clock struct{ base time.Time }

// NewClock starts a clock at now.
func NewClock() Clock { return Clock{base: time.Now()} }

// Now is the nanoseconds since the clock started.
func (c Clock) Now() int64 { return int64(time.Since(c.base)) }

// StampedValue returns a value of size bytes (at least 8) whose first 8
// bytes are the send time now; the rest is filler.
func StampedValue(now int64, size int, filler []byte) []byte {
	if size < 8 {
		size = 8
	}
	v := make([]byte, size)
	binary.LittleEndian.PutUint64(v, uint64(now))
	copy(v[8:], filler)
	return v
}

// Stamp reads the send time StampedValue put in v; ok is false when v is
// too short to carry one.
func Stamp(v []byte) (int64, bool) {
	if len(v) < 8 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(v)), true
}

// Filler is size bytes of printable, non-repeating-looking data.
func Filler(size int) []byte {
	b := make([]byte, size)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return b
}

// Fatal prints msg to stderr and exits with status 1.
func Fatal(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// Usage prints msg to stderr and exits with status 2, the status that
// tells compare.sh a workload or flag is not supported.
func Usage(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}
