// etcd-load is the etcd side of raftbus's side-by-side benchmark: an etcd
// v3 (clientv3) load generator with the same command line and output as
// raftbus-bench, so that bench/compare.sh runs both with the same flags.
//
//	etcd-load [--endpoints URL,...] [--conns N] [--clients N] [-o text|json]
//	          [--route auto|leader|any] WORKLOAD ...
//	  put [--total N] [--key-size B] [--val-size B] [--key-space-size N] [--sequential-keys] [--rate R]
//	  range KEY [END] [--total N] [--consistency l|s] [--rate R]
//	  txn-put [--total N] [--txn-ops N] [--key-size B] [--val-size B] [--key-space-size N]
//	  lease-keepalive [--total N]
//	  watch [--watchers N] [--put-total M] [--putters P] [--val-size B]
//
// With --route any, connection i goes to endpoint i mod len(endpoints);
// with leader, every connection goes to the member that leads when the run
// starts; auto (the default) is what raftbus-bench does: leader for the
// workloads that write (put, txn-put, lease-keepalive, watch), any for
// range. Client goroutine c uses connection c mod conns. Exit status 2
// means bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"raftbus-bench/etcd-load/loadstat"
)

// opTimeout bounds every single request, so a lost member cannot hang a run.
const opTimeout = 10 * time.Second

type global struct {
	endpoints []string
	conns     int
	clients   int
	output    string
	cli       []*clientv3.Client
}

func main() {
	g := global{}
	fs := flag.NewFlagSet("etcd-load", flag.ContinueOnError)
	eps := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	fs.IntVar(&g.conns, "conns", 1, "gRPC connections")
	fs.IntVar(&g.clients, "clients", 1, "concurrent clients")
	fs.StringVar(&g.output, "o", "text", "output: text or json")
	route := fs.String("route", "auto", "auto, leader or any: which members the connections go to")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	args := fs.Args()
	if len(args) == 0 || g.conns < 1 || g.clients < 1 ||
		(g.output != "text" && g.output != "json") ||
		(*route != "auto" && *route != "leader" && *route != "any") {
		loadstat.Usage("usage: etcd-load [--endpoints URL,...] [--conns N] " +
			"[--clients N] [-o text|json] [--route auto|leader|any] " +
			"put|range|txn-put|lease-keepalive|watch ...")
	}
	g.endpoints = strings.Split(*eps, ",")
	workloads := map[string]func(*global, []string) *loadstat.Result{
		"put": runPut, "range": runRange, "txn-put": runTxnPut,
		"lease-keepalive": runLeaseKeepalive, "watch": runWatch,
	}
	run, ok := workloads[args[0]]
	if !ok {
		loadstat.Usage("etcd-load: unknown workload %q", args[0])
	}
	if *route == "leader" || (*route == "auto" && args[0] != "range") {
		g.endpoints = []string{findLeader(g.endpoints)}
	}
	g.dial()
	r := run(&g, args[1:])
	for _, c := range g.cli {
		c.Close()
	}
	r.System = "etcd"
	r.Workload = args[0]
	r.Conns = g.conns
	if r.Clients == 0 {
		r.Clients = g.clients
	}
	r.Print(os.Stdout, g.output)
}

func (g *global) dial() {
	for i := 0; i < g.conns; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{g.endpoints[i%len(g.endpoints)]},
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			loadstat.Fatal("etcd-load: dial %s: %v", g.endpoints[i%len(g.endpoints)], err)
		}
		g.cli = append(g.cli, c)
	}
}

// findLeader asks each endpoint for its status and returns the one that
// is its own leader.
func findLeader(endpoints []string) string {
	for _, ep := range endpoints {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep},
			DialTimeout: 5 * time.Second})
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		st, err := c.Status(ctx, ep)
		cancel()
		c.Close()
		if err == nil && st.Header.MemberId == st.Leader {
			return ep
		}
	}
	loadstat.Fatal("etcd-load: no leader among %v", endpoints)
	return ""
}

func (g *global) conn(client int) *clientv3.Client { return g.cli[client%len(g.cli)] }

func parse(fs *flag.FlagSet, args []string) {
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		loadstat.Usage("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
}

// keyGen makes keys of keySize bytes (longer if the number needs it) out of
// numbers in [0, keySpace): random, or in order with sequential.
type keyGen struct {
	size       int
	space      int64
	sequential bool
}

func (k keyGen) key(rng *rand.Rand, i int64) string {
	n := i % k.space
	if !k.sequential {
		n = rng.Int63n(k.space)
	}
	return fmt.Sprintf("%0*d", k.size, n)
}

// rngs gives each client goroutine its own generator (rand.Rand is not
// safe for concurrent use).
func rngs(n int) []*rand.Rand {
	r := make([]*rand.Rand, n)
	for i := range r {
		r[i] = rand.New(rand.NewSource(time.Now().UnixNano() + int64(i)))
	}
	return r
}

func runPut(g *global, args []string) *loadstat.Result {
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	total := fs.Int64("total", 10000, "puts")
	keySize := fs.Int("key-size", 8, "key bytes")
	valSize := fs.Int("val-size", 8, "value bytes")
	space := fs.Int64("key-space-size", 1, "distinct keys")
	seq := fs.Bool("sequential-keys", false, "keys in order, not random")
	rate := fs.Float64("rate", 0, "puts per second, 0 = as fast as possible")
	parse(fs, args)
	if *space < 1 || *total < 1 {
		loadstat.Usage("put: --total and --key-space-size must be >= 1")
	}
	kg := keyGen{*keySize, *space, *seq}
	val := string(loadstat.Filler(*valSize))
	rs := rngs(g.clients)
	rn := loadstat.Runner{Clients: g.clients, Total: *total, Rate: *rate}
	lat, errs, dur := rn.Run(func(c int, i int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, err := g.conn(c).Put(ctx, kg.key(rs[c], i), val)
		return err
	})
	return &loadstat.Result{Total: *total, Errors: errs, Duration: dur, Lat: lat}
}

func runRange(g *global, args []string) *loadstat.Result {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		loadstat.Usage("usage: range KEY [END] [--total N] [--consistency l|s]")
	}
	key, end := args[0], ""
	args = args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		end, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("range", flag.ContinueOnError)
	total := fs.Int64("total", 10000, "ranges")
	cons := fs.String("consistency", "l", "l (linearizable) or s (serializable)")
	rate := fs.Float64("rate", 0, "ranges per second, 0 = as fast as possible")
	parse(fs, args)
	if *cons != "l" && *cons != "s" {
		loadstat.Usage("range: --consistency must be l or s")
	}
	var opts []clientv3.OpOption
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	if *cons == "s" {
		opts = append(opts, clientv3.WithSerializable())
	}
	rn := loadstat.Runner{Clients: g.clients, Total: *total, Rate: *rate}
	lat, errs, dur := rn.Run(func(c int, i int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, err := g.conn(c).Get(ctx, key, opts...)
		return err
	})
	return &loadstat.Result{Total: *total, Errors: errs, Duration: dur, Lat: lat}
}

func runTxnPut(g *global, args []string) *loadstat.Result {
	fs := flag.NewFlagSet("txn-put", flag.ContinueOnError)
	total := fs.Int64("total", 10000, "transactions")
	ops := fs.Int("txn-ops", 1, "puts per transaction")
	keySize := fs.Int("key-size", 8, "key bytes")
	valSize := fs.Int("val-size", 8, "value bytes")
	space := fs.Int64("key-space-size", 1, "distinct keys (raised to txn-ops)")
	parse(fs, args)
	if *ops < 1 || *total < 1 {
		loadstat.Usage("txn-put: --total and --txn-ops must be >= 1")
	}
	// etcd rejects a transaction that writes one key twice.
	if *space < int64(*ops) {
		*space = int64(*ops)
	}
	val := string(loadstat.Filler(*valSize))
	rs := rngs(g.clients)
	rn := loadstat.Runner{Clients: g.clients, Total: *total}
	lat, errs, dur := rn.Run(func(c int, i int64) error {
		base := rs[c].Int63n(*space)
		puts := make([]clientv3.Op, *ops)
		for j := range puts {
			k := fmt.Sprintf("%0*d", *keySize, (base+int64(j))%*space)
			puts[j] = clientv3.OpPut(k, val)
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, err := g.conn(c).Txn(ctx).Then(puts...).Commit()
		return err
	})
	return &loadstat.Result{Total: *total, Errors: errs, Duration: dur, Lat: lat}
}

// runLeaseKeepalive grants one lease per client (not timed), then times
// single keep-alive requests on it.
func runLeaseKeepalive(g *global, args []string) *loadstat.Result {
	const leaseTTLs = 60
	fs := flag.NewFlagSet("lease-keepalive", flag.ContinueOnError)
	total := fs.Int64("total", 10000, "keep-alive requests")
	parse(fs, args)
	leases := make([]clientv3.LeaseID, g.clients)
	for c := range leases {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		resp, err := g.conn(c).Grant(ctx, leaseTTLs)
		cancel()
		if err != nil {
			loadstat.Fatal("lease-keepalive: grant: %v", err)
		}
		leases[c] = resp.ID
	}
	rn := loadstat.Runner{Clients: g.clients, Total: *total}
	lat, errs, dur := rn.Run(func(c int, i int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, err := g.conn(c).KeepAliveOnce(ctx, leases[c])
		return err
	})
	for c, id := range leases {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		g.conn(c).Revoke(ctx, id)
		cancel()
	}
	return &loadstat.Result{Total: *total, Errors: errs, Duration: dur, Lat: lat}
}
