// nats-load is the NATS JetStream side of raftbus's side-by-side
// benchmark: pub/sub and work-queue load on R3 file-storage streams, with
// the same command line shape and output as raftbus-bench.
//
//	nats-load [--endpoints URL,...] [--conns N] [-o text|json] WORKLOAD ...
//	  pubsub --publishers N --subscribers M --total K [--size B]
//	  queue --producers N --consumers M --total K [--size B] [--batch F]
//	  wait [--timeout-s S]   until JetStream accepts an R3 stream
//
// Connection i lists the endpoints starting at endpoint i mod len, so the
// connections spread over the members; publisher, subscriber, producer or
// consumer number j uses connection j mod conns. Every message carries its
// send time in its first 8 bytes. Each run makes its own stream and
// deletes it at the end. Exit status 2 means bad usage.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"raftbus-bench/etcd-load/loadstat"
)

// opTimeout bounds every request to the servers.
const opTimeout = 10 * time.Second

// replicas is the stream replication factor: a quorum of 3 like raftbus.
const replicas = 3

type global struct {
	endpoints []string
	conns     int
	clients   int
	output    string
	nc        []*nats.Conn
	js        []nats.JetStreamContext
}

func main() {
	g := global{}
	fs := flag.NewFlagSet("nats-load", flag.ContinueOnError)
	eps := fs.String("endpoints", nats.DefaultURL, "comma-separated server URLs")
	fs.IntVar(&g.conns, "conns", 1, "connections")
	fs.IntVar(&g.clients, "clients", 1, "accepted for raftbus-bench's command line; unused")
	fs.StringVar(&g.output, "o", "text", "output: text or json")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	args := fs.Args()
	if len(args) == 0 || g.conns < 1 || (g.output != "text" && g.output != "json") {
		loadstat.Usage("usage: nats-load [--endpoints URL,...] [--conns N] " +
			"[-o text|json] pubsub|queue|wait ...")
	}
	g.endpoints = strings.Split(*eps, ",")
	if args[0] == "wait" {
		os.Exit(runWait(&g, args[1:]))
	}
	workloads := map[string]func(*global, []string) *loadstat.Result{
		"pubsub": runPubsub, "queue": runQueue,
	}
	run, ok := workloads[args[0]]
	if !ok {
		loadstat.Usage("nats-load: unknown workload %q", args[0])
	}
	g.dial(g.conns)
	r := run(&g, args[1:])
	for _, nc := range g.nc {
		nc.Close()
	}
	r.System = "nats"
	r.Workload = args[0]
	r.Conns = g.conns
	r.Print(os.Stdout, g.output)
}

func (g *global) dial(n int) {
	for i := 0; i < n; i++ {
		urls := append(append([]string{}, g.endpoints[i%len(g.endpoints):]...),
			g.endpoints[:i%len(g.endpoints)]...)
		nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(),
			nats.Timeout(opTimeout), nats.Name(fmt.Sprintf("nats-load-%d", i)))
		if err != nil {
			loadstat.Fatal("nats-load: connect %s: %v", urls[0], err)
		}
		js, err := nc.JetStream(nats.MaxWait(opTimeout))
		if err != nil {
			loadstat.Fatal("nats-load: jetstream: %v", err)
		}
		g.nc = append(g.nc, nc)
		g.js = append(g.js, js)
	}
}

func parse(fs *flag.FlagSet, args []string) {
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		loadstat.Usage("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
}

// addStream creates a fresh R3 file stream with one subject named after
// the time, so runs never see each other's messages.
func (g *global) addStream(retention nats.RetentionPolicy) (string, string) {
	name := fmt.Sprintf("BENCH_%d", time.Now().UnixNano())
	subj := strings.ToLower(name) + ".msgs"
	_, err := g.js[0].AddStream(&nats.StreamConfig{
		Name: name, Subjects: []string{subj}, Storage: nats.FileStorage,
		Replicas: replicas, Retention: retention,
	})
	if err != nil {
		loadstat.Fatal("nats-load: add stream: %v", err)
	}
	return name, subj
}

// runWait exits 0 once the servers elect a JetStream meta leader and place
// an R3 stream (so all three have joined), 1 after timeout-s.
func runWait(g *global, args []string) int {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	timeout := fs.Int("timeout-s", 30, "seconds to keep trying")
	parse(fs, args)
	until := time.Now().Add(time.Duration(*timeout) * time.Second)
	for time.Now().Before(until) {
		if tryStream(g.endpoints) == nil {
			return 0
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "nats-load: JetStream not ready")
	return 1
}

func tryStream(endpoints []string) error {
	nc, err := nats.Connect(strings.Join(endpoints, ","), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(2 * time.Second))
	if err != nil {
		return err
	}
	name := fmt.Sprintf("WAIT_%d", time.Now().UnixNano())
	_, err = js.AddStream(&nats.StreamConfig{Name: name,
		Subjects: []string{strings.ToLower(name)}, Replicas: replicas})
	if err != nil {
		return err
	}
	return js.DeleteStream(name)
}
