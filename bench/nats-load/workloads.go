// The two measured workloads: fan-out of every message to every subscriber,
// and a shared work queue drained end to end.
package main

import (
	"flag"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"raftbus-bench/etcd-load/loadstat"
)

// deliveryWait is how long subscribers or consumers may keep going after
// the last publish returned before what is missing counts as errors.
const deliveryWait = 60 * time.Second

// tally is one subscriber's or consumer's latencies and last receive time.
// A lock, because a subscription's handler may still be running while the
// run ends and the tallies are read.
type tally struct {
	mu   sync.Mutex
	lat  []time.Duration
	last int64
}

func (t *tally) record(clk loadstat.Clock, data []byte) {
	now := clk.Now()
	t.mu.Lock()
	if sent, ok := loadstat.Stamp(data); ok {
		t.lat = append(t.lat, time.Duration(now-sent))
	}
	t.last = now
	t.mu.Unlock()
}

// collect merges the tallies once their goroutines can no longer add to
// them; it returns the latencies and the latest receive time.
func collect(ts []*tally, start int64) ([]time.Duration, int64) {
	parts := make([][]time.Duration, len(ts))
	last := start
	for i, t := range ts {
		t.mu.Lock()
		parts[i] = t.lat
		if t.last > last {
			last = t.last
		}
		t.mu.Unlock()
	}
	return loadstat.Merge(parts), last
}

// publish sends total stamped messages from n publishers with a
// synchronous JetStream publish (waits for the stream's ack).
func publish(g *global, clk loadstat.Clock, subj string, n int, total int64, size int) int64 {
	filler := loadstat.Filler(size)
	rn := loadstat.Runner{Clients: n, Total: total}
	_, errs, _ := rn.Run(func(c int, i int64) error {
		_, err := g.js[c%len(g.js)].Publish(subj,
			loadstat.StampedValue(clk.Now(), size, filler))
		return err
	})
	return errs
}

// runPubsub: M ordered consumers (each gets every message) subscribe to a
// fresh limits-retention stream, then N publishers publish K messages.
// Throughput is delivered messages (M*K) over first publish to last
// delivery; latency is publish send to delivery.
func runPubsub(g *global, args []string) *loadstat.Result {
	fs := flag.NewFlagSet("pubsub", flag.ContinueOnError)
	pubs := fs.Int("publishers", 1, "publishers")
	subs := fs.Int("subscribers", 1, "subscribers, each gets every message")
	total := fs.Int64("total", 10000, "messages published")
	size := fs.Int("size", 128, "message bytes (at least 8: the send time)")
	parse(fs, args)
	if *pubs < 1 || *subs < 1 || *total < 1 {
		loadstat.Usage("pubsub: --publishers, --subscribers, --total must be >= 1")
	}
	clk := loadstat.NewClock()
	stream, subj := g.addStream(nats.LimitsPolicy)
	defer g.js[0].DeleteStream(stream)
	ts := make([]*tally, *subs)
	var delivered int64
	all := make(chan struct{})
	want := *total * int64(*subs)
	subscriptions := make([]*nats.Subscription, *subs)
	for i := range ts {
		t := &tally{}
		ts[i] = t
		var err error
		subscriptions[i], err = g.js[i%len(g.js)].Subscribe(subj, func(m *nats.Msg) {
			t.record(clk, m.Data)
			if atomic.AddInt64(&delivered, 1) == want {
				close(all)
			}
		}, nats.OrderedConsumer())
		if err != nil {
			loadstat.Fatal("pubsub: subscribe: %v", err)
		}
	}
	start := clk.Now()
	pubErrs := publish(g, clk, subj, *pubs, *total, *size)
	select {
	case <-all:
	case <-time.After(deliveryWait):
	}
	for _, sub := range subscriptions {
		sub.Unsubscribe()
	}
	lat, last := collect(ts, start)
	errs := want - int64(len(lat))
	if errs < pubErrs {
		errs = pubErrs
	}
	return &loadstat.Result{Clients: *pubs, Total: want, Errors: errs,
		Duration: time.Duration(last - start), Lat: lat}
}
