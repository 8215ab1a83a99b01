package main

// "Survives a server restart": the suite cannot restart the server it was
// given, so it starts its own server of the same flavor on another free
// loopback port with its own dataDir, stops it with SIGTERM and starts it
// again on the same dataDir and port, while one client handle stays open.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

// serverStartWait bounds the wait for imok (a JVM on a busy machine is slow).
const serverStartWait = 60 * time.Second

// serverStopWait bounds the wait for the process to exit after SIGTERM.
const serverStopWait = 20 * time.Second

// reconnectWait bounds the wait for the client to get its session back, and
// for a first session on the freshly started server: a JVM that answers imok
// may still be loading, and its first session waits for the first txn log's
// preallocation and fsync (a 15 s wait once fell short on a loaded machine).
const reconnectWait = 40 * time.Second

// readWaitCap bounds any one read of the restart checks' connections. go-zookeeper waits
// ten receive timeouts for the answer to its connect request (200 s for a 30 s session)
// where ZooKeeper's Java client gives up after the session timeout over the host count. A
// connection taken while the server restarts and never answered (twice on CI against
// ZooKeeper 3.8, the handle stuck in StateConnected) would outlast every wait here; capped,
// the handle tries again as a Java client would. Pings (every receive timeout / 2, 10 s)
// keep a live connection's reads well inside the cap.
const readWaitCap = 15 * time.Second

// cappedConn is a connection whose read deadlines are at most readWaitCap away.
type cappedConn struct{ net.Conn }

func (c cappedConn) SetReadDeadline(t time.Time) error {
	if latest := time.Now().Add(readWaitCap); !t.IsZero() && t.After(latest) {
		t = latest
	}
	return c.Conn.SetReadDeadline(t)
}

func cappedDialer(network, address string, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	return cappedConn{conn}, nil
}

// dialOwn dials the own server, naming its log tail when no session comes.
func dialOwn(srv *ownServer, name string, sessionTimeout time.Duration) (*client, error) {
	c, err := dialWithin(name, srv.addr(), sessionTimeout, reconnectWait, cappedDialer)
	if err != nil {
		return nil, fmt.Errorf("%v; %s", err, srv.logTail())
	}
	return c, nil
}

type ownServer struct {
	flavor string
	dir    string
	port   int
	cfg    string
	log    string
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
}

var (
	ownMu      sync.Mutex
	ownServers []*ownServer
)

// stopOwnServers kills whatever the suite started and is still running.
func stopOwnServers() {
	ownMu.Lock()
	defer ownMu.Unlock()
	for _, s := range ownServers {
		if s.cmd != nil && s.cmd.Process != nil && !s.exited() {
			_ = s.cmd.Process.Kill()
			s.waitExit(5 * time.Second)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newOwnServer(flavor, work string) (*ownServer, error) {
	dir, err := os.MkdirTemp(work, "restart-"+flavor+"-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &ownServer{flavor: flavor, dir: dir, port: port,
		cfg: filepath.Join(dir, "zoo.cfg"), log: filepath.Join(dir, "server.log")}
	cfg := []string{
		"tickTime=2000",
		"dataDir=" + filepath.Join(dir, "data"),
		fmt.Sprintf("clientPort=%d", port),
		"clientPortAddress=127.0.0.1",
		"maxClientCnxns=0",
		"admin.enableServer=false",
		"4lw.commands.whitelist=*",
	}
	if flavor == "corral" {
		cfg = append(cfg, "corral.shards=2")
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.cfg, []byte(strings.Join(cfg, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	ownMu.Lock()
	ownServers = append(ownServers, s)
	ownMu.Unlock()
	return s, nil
}

func (s *ownServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *ownServer) command() (*exec.Cmd, error) {
	switch s.flavor {
	case "corral":
		bin := os.Getenv("CORRAL_BIN")
		if bin == "" {
			return nil, errors.New("CORRAL_BIN is not set")
		}
		return exec.Command(bin, "server", s.cfg), nil
	case "zookeeper":
		cp := os.Getenv("ZK_JAVA_CP")
		if cp == "" {
			return nil, errors.New("ZK_JAVA_CP is not set")
		}
		return exec.Command("java", "-cp", cp,
			"-Dzookeeper.log.dir="+s.dir, "-Dzookeeper.root.logger=INFO,CONSOLE",
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", s.cfg), nil
	}
	return nil, fmt.Errorf("unknown flavor %q", s.flavor)
}

func (s *ownServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *ownServer) waitExit(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.done:
		return true
	case <-timer.C:
		return false
	}
}

// start runs the server and waits (bounded) for it to answer ruok.
func (s *ownServer) start() error {
	cmd, err := s.command()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The server must not outlive the suite, however the suite ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	ownMu.Lock()
	s.cmd, s.done = cmd, done
	ownMu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	deadline := time.Now().Add(serverStartWait)
	for {
		if s.exited() {
			return fmt.Errorf("the server exited during startup: %s", s.logTail())
		}
		if ruok(s.addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no imok within %v: %s", serverStartWait, s.logTail())
		}
		time.Sleep(200 * time.Millisecond) // polling for a server to come up
	}
}

// stop sends SIGTERM to the server's PID and waits (bounded) for it to exit.
func (s *ownServer) stop() error {
	if s.cmd == nil || s.exited() {
		return errors.New("the server is not running")
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !s.waitExit(serverStopWait) {
		_ = s.cmd.Process.Kill()
		s.waitExit(5 * time.Second)
		return fmt.Errorf("still running %v after SIGTERM (killed)", serverStopWait)
	}
	return nil
}

func (s *ownServer) logTail() string {
	data, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "log tail:\n    | " + strings.Join(lines, "\n    | ")
}

func ruok(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	buf := make([]byte, 4)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "imok"
}

func runRestart() {
	flavor := os.Getenv("ZK_FLAVOR")
	if flavor == "" {
		flavor = "zookeeper"
	}
	work := os.Getenv("CLIENT_WORK")
	if work == "" {
		work = os.TempDir()
	}
	srv, err := newOwnServer(flavor, work)
	if err == nil {
		err = srv.start()
	}
	if !check(fmt.Sprintf("restart: own %s server started", flavor), err) {
		return
	}
	defer func() {
		if !srv.exited() {
			check("restart: own server stopped at the end", srv.stop())
		}
	}()

	r, err := dialOwn(srv, "r", 30*time.Second)
	if !check("restart: a session on the own server", err) {
		return
	}
	defer r.Close()
	const path, eph = "/gosuite-restart", "/gosuite-restart-eph"
	var before *zk.Stat
	var watch <-chan zk.Event
	if !check("restart: data and an ephemeral written, a data watch set", func() error {
		if _, err := r.Create(path, []byte("before"), 0, worldAll); err != nil {
			return err
		}
		if _, err := r.Set(path, []byte("before-restart"), 0); err != nil {
			return err
		}
		if _, err := r.Create(eph, []byte("e"), zk.FlagEphemeral, worldAll); err != nil {
			return err
		}
		var err error
		_, before, watch, err = r.GetW(path)
		return err
	}()) {
		return
	}
	session := r.SessionID()

	mark := r.ev.mark()
	if !check("restart: the server stops on SIGTERM; the client sees the disconnect", func() error {
		if err := srv.stop(); err != nil {
			return err
		}
		if _, ok := r.ev.waitFor(mark, eventWait, isState(zk.StateDisconnected)); !ok {
			return fmt.Errorf("no StateDisconnected within %v", eventWait)
		}
		return nil
	}()) {
		return
	}
	mark = r.ev.mark()
	if !check("restart: the server starts again on the same dataDir and port", srv.start()) {
		return
	}
	if !check("restart: the same handle reconnects, same session", func() error {
		if _, ok := r.ev.waitFor(mark, reconnectWait, isState(zk.StateHasSession)); !ok {
			return fmt.Errorf("no StateHasSession within %v (state %v); %s", reconnectWait, r.State(), srv.logTail())
		}
		if n := r.ev.count(mark, isState(zk.StateExpired)); n != 0 {
			return errors.New("the session expired")
		}
		if r.SessionID() != session {
			return fmt.Errorf("session %#x, was %#x", r.SessionID(), session)
		}
		return nil
	}()) {
		return
	}
	check("restart: the data reads back with the same Stat", func() error {
		data, st, err := r.Get(path)
		if err != nil {
			return err
		}
		if string(data) != "before-restart" || *st != *before {
			return fmt.Errorf("data %q stat %+v, before %+v", data, *st, *before)
		}
		return nil
	}())
	r2, err := dialOwn(srv, "r2", 10*time.Second)
	if !check("restart: a new session after the restart", err) {
		return
	}
	defer r2.Close()
	var ephWatch <-chan zk.Event
	check("restart: the ephemeral is still there, owned by the session", func() error {
		ok, st, ch, err := r2.ExistsW(eph)
		if err != nil {
			return err
		}
		ephWatch = ch
		if !ok {
			return errors.New("gone")
		}
		if st.EphemeralOwner != session {
			return fmt.Errorf("owner %#x, want %#x", st.EphemeralOwner, session)
		}
		return nil
	}())
	check("restart: a watch set before the restart fires after it", func() error {
		if _, err := r2.Set(path, []byte("after"), -1); err != nil {
			return err
		}
		return waitEvent(watch, zk.EventNodeDataChanged, path)
	}())
	check("restart: closing the session then removes the ephemeral", func() error {
		r.Close()
		return waitEvent(ephWatch, zk.EventNodeDeleted, eph)
	}())
	check("restart: own server stopped at the end", srv.stop())
}
