// The watch fan-out workload: N watchers on one prefix, M puts under it;
// what is measured is delivery, not the puts.
package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.etcd.io/etcd/clientv3"
	"raftbus-bench/etcd-load/loadstat"
)

// deliveryWait is how long watchers may keep receiving after the last put
// returned before the missing events count as errors.
const deliveryWait = 30 * time.Second

// watcher is one watch stream's tally, owned by its goroutine until done
// is closed.
type watcher struct {
	lat  []time.Duration
	last int64 // clock time of the last event received
	done chan struct{}
}

// runWatch opens the watchers (spread over the connections) and waits until
// each is created, then the putters (--putters, default --clients) put
// put-total values stamped with their send time under the prefix.
// Throughput is delivered events over the time from the first put to the
// last delivery; latency is each event's receive time minus its send time.
func runWatch(g *global, args []string) *loadstat.Result {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	nw := fs.Int("watchers", 10, "watchers on the prefix")
	total := fs.Int64("put-total", 1000, "puts under the prefix")
	putters := fs.Int("putters", g.clients, "concurrent putters")
	valSize := fs.Int("val-size", 8, "value bytes (at least 8: the send time)")
	parse(fs, args)
	if *nw < 1 || *total < 1 || *putters < 1 {
		loadstat.Usage("watch: --watchers, --put-total, --putters must be >= 1")
	}
	clk := loadstat.NewClock()
	prefix := fmt.Sprintf("/etcd-load/watch/%d/", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := make([]*watcher, *nw)
	for i := range ws {
		ws[i] = startWatcher(ctx, g.conn(i), prefix, *total, clk)
	}
	filler := loadstat.Filler(*valSize)
	start := clk.Now()
	rn := loadstat.Runner{Clients: *putters, Total: *total}
	_, putErrs, _ := rn.Run(func(c int, i int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		v := loadstat.StampedValue(clk.Now(), *valSize, filler)
		_, err := g.conn(c).Put(ctx, fmt.Sprintf("%s%d", prefix, i), string(v))
		return err
	})
	deadline := time.After(deliveryWait)
	for _, w := range ws {
		select {
		case <-w.done:
		case <-deadline:
		}
	}
	cancel()
	return tallyWatchers(ws, *total, start, putErrs, *putters)
}

func startWatcher(ctx context.Context, cli *clientv3.Client, prefix string, want int64, clk loadstat.Clock) *watcher {
	w := &watcher{done: make(chan struct{})}
	ch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	select {
	case resp, ok := <-ch:
		if !ok || resp.Err() != nil || !resp.Created {
			loadstat.Fatal("watch: could not create a watcher: %v", resp.Err())
		}
	case <-time.After(opTimeout):
		loadstat.Fatal("watch: watcher not created in %v", opTimeout)
	}
	go func() {
		defer close(w.done)
		var n int64
		for resp := range ch {
			for _, ev := range resp.Events {
				now := clk.Now()
				if sent, ok := loadstat.Stamp(ev.Kv.Value); ok {
					w.lat = append(w.lat, time.Duration(now-sent))
				}
				w.last = now
				if n++; n == want {
					return
				}
			}
		}
	}()
	return w
}

// tallyWatchers runs after the watch context is cancelled: that closes
// every watch channel, so each watcher goroutine ends and closes done, and
// its tally can be read without a race. Missing events and failed puts
// are both errors; a failed put may still have been applied and delivered.
func tallyWatchers(ws []*watcher, total int64, start int64, putErrs int64, putters int) *loadstat.Result {
	parts := make([][]time.Duration, len(ws))
	last := start
	for i, w := range ws {
		<-w.done
		parts[i] = w.lat
		if w.last > last {
			last = w.last
		}
	}
	lat := loadstat.Merge(parts)
	expected := total * int64(len(ws))
	errs := expected - int64(len(lat))
	if errs < putErrs {
		errs = putErrs
	}
	return &loadstat.Result{
		Clients:  putters,
		Total:    expected,
		Errors:   errs,
		Duration: time.Duration(last - start),
		Lat:      lat,
	}
}
