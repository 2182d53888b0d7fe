// The work-queue workload: producers publish with ack into a
// WorkQueue-retention R3 stream; consumers share one durable pull consumer,
// fetch and acknowledge synchronously.
package main

import (
	"errors"
	"flag"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"raftbus-bench/etcd-load/loadstat"
)

// durable is the name of the one pull consumer all consumers share.
const durable = "work"

// runQueue: throughput is acknowledged messages over first publish to last
// ack; latency is publish send to ack returned.
func runQueue(g *global, args []string) *loadstat.Result {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	prods := fs.Int("producers", 1, "producers")
	cons := fs.Int("consumers", 1, "consumers sharing one durable consumer")
	total := fs.Int64("total", 10000, "messages")
	size := fs.Int("size", 128, "message bytes (at least 8: the send time)")
	batch := fs.Int("batch", 1, "messages per fetch")
	parse(fs, args)
	if *prods < 1 || *cons < 1 || *total < 1 || *batch < 1 {
		loadstat.Usage("queue: --producers, --consumers, --total, --batch must be >= 1")
	}
	clk := loadstat.NewClock()
	stream, subj := g.addStream(nats.WorkQueuePolicy)
	defer g.js[0].DeleteStream(stream)
	_, err := g.js[0].AddConsumer(stream, &nats.ConsumerConfig{
		Durable: durable, AckPolicy: nats.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: -1,
	})
	if err != nil {
		loadstat.Fatal("queue: add consumer: %v", err)
	}
	var acked int64
	stop := make(chan struct{})
	ts := make([]*tally, *cons)
	var wg sync.WaitGroup
	for i := range ts {
		ts[i] = &tally{}
		sub, err := g.js[i%len(g.js)].PullSubscribe(subj, durable,
			nats.Bind(stream, durable))
		if err != nil {
			loadstat.Fatal("queue: pull subscribe: %v", err)
		}
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			consume(sub, *batch, clk, t, &acked, *total, stop)
		}(ts[i])
	}
	start := clk.Now()
	pubErrs := publish(g, clk, subj, *prods, *total, *size)
	waitAcked(&acked, *total, deliveryWait)
	close(stop)
	wg.Wait()
	lat, last := collect(ts, start)
	errs := *total - int64(len(lat))
	if errs < pubErrs {
		errs = pubErrs
	}
	return &loadstat.Result{Clients: *prods, Total: *total, Errors: errs,
		Duration: time.Duration(last - start), Lat: lat}
}

// consume fetches and acks until every message is acked or stop closes.
func consume(sub *nats.Subscription, batch int, clk loadstat.Clock, t *tally,
	acked *int64, total int64, stop <-chan struct{}) {
	const fetchWait = 500 * time.Millisecond
	for atomic.LoadInt64(acked) < total {
		select {
		case <-stop:
			return
		default:
		}
		msgs, err := sub.Fetch(batch, nats.MaxWait(fetchWait))
		if err != nil && !errors.Is(err, nats.ErrTimeout) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, m := range msgs {
			if m.AckSync(nats.AckWait(opTimeout)) != nil {
				continue // redelivered after AckWait
			}
			t.record(clk, m.Data)
			atomic.AddInt64(acked, 1)
		}
	}
}

func waitAcked(acked *int64, total int64, wait time.Duration) {
	until := time.Now().Add(wait)
	for atomic.LoadInt64(acked) < total && time.Now().Before(until) {
		time.Sleep(5 * time.Millisecond)
	}
}
