// The Go client suite: github.com/samuel/go-zookeeper/zk (Debian's
// golang-github-samuel-go-zookeeper-dev) against the server in $ZK_HOSTS,
// plus a server of the same flavor that the suite starts, stops and starts
// again itself (restart.go).
//
// Each check prints "ok   NAME" or "FAIL NAME: why"; the last line is
// "go: N passed, M failed". Exit status 1 when anything failed. A watchdog
// ends the run (counted as a failure) after SUITE_TIMEOUT_S seconds.
//
// Env: ZK_HOSTS (required), ZK_FLAVOR (zookeeper|corral), CLIENT_WORK
// (scratch directory), CORRAL_BIN, ZK_JAVA_CP, SUITE_TIMEOUT_S (default 110),
// ZK_GO_VERBOSE=1 (print the client library's log), ZK_KILL_DIR (run only
// the kill-leader part, kill.go).
package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

// connectWait bounds the wait for a session after zk.Connect.
const connectWait = 15 * time.Second

// eventWait bounds the wait for a watch event.
const eventWait = 10 * time.Second

var (
	countsMu sync.Mutex
	passed   int
	failed   int
	finished bool
)

// check counts one check: err == nil passes.
func check(name string, err error) bool {
	countsMu.Lock()
	defer countsMu.Unlock()
	if finished {
		return false
	}
	if err == nil {
		passed++
		fmt.Printf("ok   %s\n", name)
		return true
	}
	failed++
	fmt.Printf("FAIL %s: %v\n", name, err)
	return false
}

// finish prints the summary line once and exits.
func finish(extraFailures int) {
	countsMu.Lock()
	if finished {
		countsMu.Unlock()
		return
	}
	finished = true
	failed += extraFailures
	p, f := passed, failed
	countsMu.Unlock()
	stopOwnServers()
	fmt.Printf("go: %d passed, %d failed\n", p, f)
	if f > 0 || p == 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

// events records every event a connection reports (session state changes and
// watch notifications), so that checks can wait for one and count them.
type events struct {
	mu      sync.Mutex
	list    []zk.Event
	changed chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{})} }

// add is the connection's event callback: it must not block.
func (e *events) add(ev zk.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// mark is the position of the next event.
func (e *events) mark() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.list)
}

// waitFor waits at most timeout for an event at or after position from that
// satisfies pred, and returns it.
func (e *events) waitFor(from int, timeout time.Duration, pred func(zk.Event) bool) (zk.Event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		e.mu.Lock()
		for ; from < len(e.list); from++ {
			if pred(e.list[from]) {
				ev := e.list[from]
				e.mu.Unlock()
				return ev, true
			}
		}
		ch := e.changed
		e.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return zk.Event{}, false
		}
		timer := time.NewTimer(left)
		select {
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// count is the number of events at or after position from that satisfy pred.
func (e *events) count(from int, pred func(zk.Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for ; from < len(e.list); from++ {
		if pred(e.list[from]) {
			n++
		}
	}
	return n
}

func isState(s zk.State) func(zk.Event) bool {
	return func(ev zk.Event) bool { return ev.Type == zk.EventSession && ev.State == s }
}

func isNodeEvent(t zk.EventType, path string) func(zk.Event) bool {
	return func(ev zk.Event) bool { return ev.Type == t && ev.Path == path }
}

func isAnyNodeEvent(path string) func(zk.Event) bool {
	return func(ev zk.Event) bool { return ev.Type != zk.EventSession && ev.Path == path }
}

// client is one session with its event record.
type client struct {
	*zk.Conn
	ev    *events
	close sync.Once
}

// Close ends the session once (the library panics on a second Close).
func (c *client) Close() { c.close.Do(c.Conn.Close) }

// catchUp is called before a session reads what another session wrote. In an
// ensemble (ZK_CLUSTER=1, tests/compat/run.sh --cluster) the two sessions may
// sit on different servers, and ZooKeeper promises a session only its own
// order: sync brings its server up to the leader first. A standalone server
// must be current without it, so there nothing is sent.
func (c *client) catchUp(path string) error {
	if os.Getenv("ZK_CLUSTER") != "1" {
		return nil
	}
	if _, err := c.Sync(path); err != nil {
		return fmt.Errorf("sync %s: %v", path, err)
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...interface{}) {}

func libLogger(name string) zk.Logger {
	if os.Getenv("ZK_GO_VERBOSE") == "1" {
		return log.New(os.Stderr, "zk["+name+"] ", log.Ltime|log.Lmicroseconds)
	}
	return quietLogger{}
}

// dial opens a session and waits (bounded) until the server has granted it.
func dial(name, hosts string, sessionTimeout time.Duration) (*client, error) {
	// net.DialTimeout is the library's own default dialer.
	return dialWithin(name, hosts, sessionTimeout, connectWait, net.DialTimeout)
}

// dialWithin is dial with its own bound on the wait for the session and its own dialer.
func dialWithin(name, hosts string, sessionTimeout, wait time.Duration, dialer zk.Dialer) (*client, error) {
	ev := newEvents()
	conn, _, err := zk.Connect(strings.Split(hosts, ","), sessionTimeout,
		zk.WithEventCallback(ev.add), zk.WithLogger(libLogger(name)), zk.WithDialer(dialer))
	if err != nil {
		return nil, err
	}
	if _, ok := ev.waitFor(0, wait, isState(zk.StateHasSession)); !ok {
		conn.Close()
		return nil, fmt.Errorf("no session from %s within %v (state %v)", hosts, wait, conn.State())
	}
	return &client{Conn: conn, ev: ev}, nil
}

// wantErr: got must be exactly the library's sentinel error want.
func wantErr(got, want error) error {
	if got == want {
		return nil
	}
	if got == nil {
		return fmt.Errorf("no error, want %v", want)
	}
	return fmt.Errorf("error %q, want %q", got, want)
}

// waitEvent waits on a watch channel for one event of type t on path.
func waitEvent(ch <-chan zk.Event, t zk.EventType, path string) error {
	if ch == nil {
		return errors.New("no watch channel")
	}
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			return errors.New("watch channel closed without an event")
		}
		if ev.Type != t || ev.Path != path {
			return fmt.Errorf("event %v on %q, want %v on %q", ev.Type, ev.Path, t, path)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("no %v on %q within %v", t, path, eventWait)
	}
}

func main() {
	hosts := os.Getenv("ZK_HOSTS")
	if hosts == "" {
		fmt.Println("FAIL setup: ZK_HOSTS is not set")
		finish(1)
	}
	limit := 110
	if s := os.Getenv("SUITE_TIMEOUT_S"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			limit = n
		}
	}
	time.AfterFunc(time.Duration(limit)*time.Second, func() {
		fmt.Printf("FAIL watchdog: the suite did not finish within %ds\n", limit)
		finish(1)
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sig
		fmt.Printf("FAIL interrupted by %v\n", s)
		finish(1)
	}()

	base := fmt.Sprintf("/gosuite-%d-%d", os.Getpid(), time.Now().UnixNano()%1000000)
	if dir := os.Getenv("ZK_KILL_DIR"); dir != "" {
		// tests/compat/run.sh --kill-leader: only the lock under a leader kill (kill.go).
		runKill(hosts, base, dir)
		finish(0)
	}
	runMain(hosts, base)
	runRestart()
	finish(0)
}
