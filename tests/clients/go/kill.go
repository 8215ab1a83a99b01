// The kill-leader part (tests/compat/run.sh FLAVOR --cluster --kill-leader,
// ZK_KILL_DIR set): the library's zk.Lock under contention while the
// ensemble's leader server is killed.
//
// Six goroutines, each with its own session on $ZK_HOSTS, take the same lock
// in turn; each holder increments a counter written as "N token" with the
// version it read. Once they have made progress the program creates
// $ZK_KILL_DIR/go.contending; run.sh then kill -9s the leader and, once the
// others have a new leader, creates $ZK_KILL_DIR/recovered. The goroutines go
// on until they made progress again, then stop. Two holders at once (counted
// in this process) or a counter write that finds another holder's write is
// a failure.
//
// The library's Lock does not tell where its lock node is when Lock or
// Unlock fails part-way (a connection lost mid-call), so a goroutine that
// meets such an error closes its session (the server removes the node) and
// opens a new one.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

const (
	killProgress       = 4
	killContendingWait = 60 * time.Second
	killRecoveredWait  = 90 * time.Second
	killAfterWait      = 60 * time.Second
	killSession        = 6 * time.Second
)

type killRun struct {
	hosts, lockPath, counter string
	stop                     atomic.Bool
	holders                  atomic.Int32
	acquired                 atomic.Int32
	writes                   atomic.Int32
	unknown                  atomic.Int32
	redials                  atomic.Int32
	mu                       sync.Mutex
	violation                string
}

func (k *killRun) violated(what string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.violation == "" {
		k.violation = what
		fmt.Printf("go: VIOLATION %s\n", what)
	}
}

// isConnErr: the error of a call whose connection was lost (its effect unknown).
func isConnErr(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrSessionExpired) ||
		errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrClosing)
}

// increment: under the lock, N -> N+1 with the version read.
func (k *killRun) increment(c *client, token string) error {
	data, st, err := c.Get(k.counter)
	if err != nil {
		return err
	}
	cur := string(data)
	n, err := strconv.Atoi(strings.SplitN(cur, " ", 2)[0])
	if err != nil {
		return fmt.Errorf("counter holds %q", cur)
	}
	mine := fmt.Sprintf("%d %s", n+1, token)
	_, err = c.Set(k.counter, []byte(mine), st.Version)
	switch {
	case err == nil:
		k.writes.Add(1)
	case errors.Is(err, zk.ErrBadVersion):
		k.violated(fmt.Sprintf("lost update on %s: read %q at version %d, another write came first", k.counter, cur, st.Version))
	case isConnErr(err):
		k.unknown.Add(1)
		return err
	default:
		return err
	}
	return nil
}

func (k *killRun) worker(name string, wg *sync.WaitGroup) {
	defer wg.Done()
	round := 0
	for !k.stop.Load() {
		c, err := dial(name, k.hosts, killSession)
		if err != nil {
			k.redials.Add(1)
			continue
		}
		for !k.stop.Load() {
			l := zk.NewLock(c.Conn, k.lockPath, worldAll)
			if err := l.Lock(); err != nil {
				break
			}
			if k.holders.Add(1) != 1 {
				k.violated(name + " took the lock beside another holder")
			}
			err := k.increment(c, fmt.Sprintf("%s#%d", name, round))
			round++
			k.holders.Add(-1)
			k.acquired.Add(1)
			if err != nil {
				break
			}
			if err := l.Unlock(); err != nil {
				break
			}
		}
		// A failed call may have left this session's lock node behind: end the session.
		c.Close()
		if !k.stop.Load() {
			k.redials.Add(1)
		}
	}
}

func waitKillFile(path string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (k *killRun) waitProgress(from int32, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if k.acquired.Load() >= from+killProgress {
			return true
		}
		k.mu.Lock()
		v := k.violation
		k.mu.Unlock()
		if v != "" {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func runKill(hosts, base, dir string) {
	k := &killRun{hosts: hosts, lockPath: base + "/lock", counter: base + "/counter"}
	admin, err := dial("admin", hosts, 10*time.Second)
	if !check("kill: connect", err) {
		return
	}
	defer admin.Close()
	_, err = admin.Create(base, nil, 0, worldAll)
	if err == nil {
		_, err = admin.Create(k.counter, []byte("0 init"), 0, worldAll)
	}
	if !check("kill: create the counter", err) {
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go k.worker(fmt.Sprintf("lock-%d", i), &wg)
	}
	contending := k.waitProgress(0, killContendingWait)
	fmt.Printf("go: contending=%v, %d acquisitions\n", contending, k.acquired.Load())
	var recovered, after bool
	if contending {
		if f, err := os.Create(filepath.Join(dir, "go.contending")); err == nil {
			f.Close()
		}
		recovered = waitKillFile(filepath.Join(dir, "recovered"), killRecoveredWait)
		atRecovery := k.acquired.Load()
		fmt.Printf("go: recovered=%v, %d acquisitions\n", recovered, atRecovery)
		if recovered {
			after = k.waitProgress(atRecovery, killAfterWait)
		}
	}
	k.stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	stopped := false
	select {
	case <-done:
		stopped = true
	case <-time.After(40 * time.Second):
	}
	fmt.Printf("go: end, %d acquisitions, %d confirmed writes, %d in doubt, %d sessions replaced\n",
		k.acquired.Load(), k.writes.Load(), k.unknown.Load(), k.redials.Load())
	cond := func(ok bool, why string) error {
		if ok {
			return nil
		}
		return errors.New(why)
	}
	check("kill: the lock contended before the kill", cond(contending, "too few acquisitions"))
	check("kill: run.sh reported the new leader", cond(recovered, "no recovered file"))
	check("kill: the lock went on after the recovery", cond(after, "too few acquisitions after the recovery"))
	check("kill: the workers stopped", cond(stopped, "still running 40 s after the stop"))
	k.mu.Lock()
	v := k.violation
	k.mu.Unlock()
	check("kill: never two holders, no lost update", cond(v == "", v))
	check("kill: counter and lock nodes at the end", func() error {
		if err := admin.catchUp(k.counter); err != nil {
			return err
		}
		data, _, err := admin.Get(k.counter)
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(strings.SplitN(string(data), " ", 2)[0])
		w, u := int(k.writes.Load()), int(k.unknown.Load())
		if n < w || n > w+u {
			return fmt.Errorf("counter %d after %d confirmed writes (%d in doubt)", n, w, u)
		}
		// Closed sessions' nodes go with the session; bounded wait.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if err := admin.catchUp(k.lockPath); err != nil {
				return err
			}
			left, _, ch, err := admin.ChildrenW(k.lockPath)
			if err != nil {
				return err
			}
			if len(left) == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lock nodes left: %v", left)
			}
			select {
			case <-ch:
			case <-time.After(time.Second):
			}
		}
	}())
	deleteTree(admin, base)
}

// deleteTree removes path and everything under it, quietly.
func deleteTree(c *client, path string) {
	children, _, err := c.Children(path)
	if err == nil {
		for _, ch := range children {
			deleteTree(c, path+"/"+ch)
		}
	}
	_ = c.Delete(path, -1)
}
