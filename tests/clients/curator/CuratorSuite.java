// Apache Curator 5.x recipes against the server in $ZK_HOSTS.
//
// Each check runs in its own thread with its own Curator clients, bounded by a
// timeout, and counts as one pass or one failure. The last line printed is
// "curator: N passed, M failed"; the exit code is 0 only when nothing failed.
// Everything lives under a base path unique to this run, removed at the end.

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.data.Stat;

public final class CuratorSuite {
    static String hosts;
    static String base;
    /** ZK_HOSTS is an ensemble (tests/compat/run.sh --cluster): see catchUp. */
    static final boolean CLUSTER = "1".equals(System.getenv("ZK_CLUSTER"));
    static int passed;
    static int failed;
    static final List<String> failures = new ArrayList<>();
    /** Substrings of check names to run (the program's arguments); empty runs all. */
    static List<String> only = List.of();

    /** The default session timeout of the suite's clients. */
    static final int SESSION_MS = 10_000;

    public static void main(String[] args) throws Exception {
        only = List.of(args);
        hosts = System.getenv().getOrDefault("ZK_HOSTS", "127.0.0.1:2181");
        base = "/curator-suite-" + System.currentTimeMillis() + "-" + Long.toHexString(new Random().nextLong() & 0xffffff);
        System.out.println("curator: server " + hosts + ", base path " + base);
        // Without a server every check would wait out its own connect timeout.
        try (Scope s = new Scope()) {
            s.client();
        } catch (Throwable e) {
            System.out.println("curator: cannot use " + hosts + ": " + e.getMessage());
            System.out.println("curator: 0 passed, 1 failed");
            System.exit(1);
        }

        // The base is persistent: the checks' parents below it are containers, and an empty
        // container base can be reaped (checkIntervalMs=1000 in the compat runs, on either
        // server) between one check's delete and the next check's create beneath it.
        try (Scope s = new Scope()) {
            s.client().create().forPath(base);
        }

        check("connect and basic CRUD (parents as containers, namespace, background)", 30, CuratorSuite::crud);
        check("InterProcessMutex under contention", 60, CuratorSuite::mutex);
        check("InterProcessReadWriteLock exclusion", 60, CuratorSuite::readWriteLock);
        check("LeaderLatch: one leader, takeover after closeSession and after close", 60, CuratorSuite::leaderLatch);
        check("LeaderLatch: takeover when the leader goes silent (server-side session expiry)", 60, CuratorSuite::leaderLatchSilent);
        check("LeaderSelector: one leader, takeover after session expiry", 60, CuratorSuite::leaderSelector);
        check("CuratorCache converges to the tree", 60, CuratorSuite::curatorCache);
        check("DistributedQueue: every item consumed exactly once", 60, CuratorSuite::distributedQueue);
        check("SharedCount: concurrent increments", 60, CuratorSuite::sharedCount);
        check("DistributedAtomicLong: concurrent increments, compareAndSet", 60, CuratorSuite::atomicLong);
        check("PersistentNode: recreated after delete, setData, removed on close", 30, CuratorSuite::persistentNode);
        check("PersistentTtlNode: kept alive past its TTL, reaped after close", 45, CuratorSuite::persistentTtlNode);
        check("transaction: forOperations commits atomically", 30, CuratorSuite::transactionOk);
        check("transaction: a failing transaction changes nothing", 30, CuratorSuite::transactionFails);

        cleanup();
        for (String f : failures) {
            System.out.println("failed: " + f);
        }
        System.out.println("curator: " + passed + " passed, " + failed + " failed");
        System.out.flush();
        // Curator and ZooKeeper threads of a timed-out check may still run.
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }

    // ---- harness --------------------------------------------------------

    interface Body {
        void run() throws Exception;
    }

    /** Runs one check in its own thread, bounded by timeoutS. */
    static void check(String name, int timeoutS, Body body) {
        if (!only.isEmpty() && only.stream().noneMatch(name::contains)) {
            return;
        }
        AtomicReference<Throwable> error = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable e) {
                error.set(e);
            }
        }, "check");
        t.setDaemon(true);
        long start = System.nanoTime();
        t.start();
        try {
            t.join(TimeUnit.SECONDS.toMillis(timeoutS));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        String why = null;
        if (t.isAlive()) {
            t.interrupt();
            why = "timed out after " + timeoutS + " s";
            // Give its finally blocks a moment to close its clients.
            try {
                t.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else if (error.get() != null) {
            Throwable e = error.get();
            why = e instanceof AssertionError ? e.getMessage() : e.toString();
        }
        if (why == null) {
            passed++;
            System.out.printf("PASS %s (%d ms)%n", name, ms);
        } else {
            failed++;
            failures.add(name + ": " + why);
            System.out.printf("FAIL %s (%d ms): %s%n", name, ms, why);
            if (error.get() != null && !(error.get() instanceof AssertionError)) {
                error.get().printStackTrace(System.out);
            }
        }
        System.out.flush();
    }

    static void expect(boolean cond, String fmt, Object... args) {
        if (!cond) {
            throw new AssertionError(String.format(fmt, args));
        }
    }

    static void expectEq(Object want, Object got, String what) {
        if (want == null ? got != null : !want.equals(got)) {
            throw new AssertionError(what + ": expected " + want + ", got " + got);
        }
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String str(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    /** Closes what it was given, newest first, quietly: every check's clients and recipes. */
    static final class Scope implements AutoCloseable {
        private final Deque<AutoCloseable> items = new ArrayDeque<>();

        CuratorFramework client() throws InterruptedException {
            return client(SESSION_MS);
        }

        CuratorFramework client(int sessionMs) throws InterruptedException {
            return client(sessionMs, hosts);
        }

        CuratorFramework client(int sessionMs, String connectString) throws InterruptedException {
            CuratorFramework c = CuratorFrameworkFactory.builder()
                    .connectString(connectString)
                    .sessionTimeoutMs(sessionMs)
                    .connectionTimeoutMs(Math.min(sessionMs, 10_000))
                    .retryPolicy(new ExponentialBackoffRetry(100, 10, 2_000))
                    .build();
            items.push(c);
            c.start();
            expect(c.blockUntilConnected(15, TimeUnit.SECONDS), "client did not connect to %s within 15 s", connectString);
            return c;
        }

        <T extends AutoCloseable> T add(T item) {
            items.push(item);
            return item;
        }

        @Override
        public void close() {
            while (!items.isEmpty()) {
                try {
                    items.pop().close();
                } catch (Throwable ignored) {
                    // Closing a recipe whose client was killed may fail; the client closes anyway.
                }
            }
        }
    }

    /** A condition variable for state changed by Curator's threads: mutate under it, then signal. */
    static final class Monitor {
        synchronized void signal() {
            notifyAll();
        }

        /** Waits until cond (evaluated while holding the monitor) holds; false on timeout. */
        synchronized boolean await(BooleanSupplier cond, long timeoutMs) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            while (!cond.getAsBoolean()) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    return false;
                }
                wait(left);
            }
            return true;
        }
    }

    /**
     * A loopback TCP proxy to the first server of $ZK_HOSTS that can go silent: once
     * frozen it forwards nothing in either direction and black-holes new connections,
     * without closing anything, so the server sees a client that stopped talking.
     */
    static final class Proxy implements AutoCloseable {
        private final java.net.ServerSocket listener;
        private final List<java.net.Socket> sockets = new ArrayList<>();
        private volatile boolean frozen;

        Proxy() throws java.io.IOException {
            String first = hosts.split(",")[0];
            int colon = first.lastIndexOf(':');
            String host = first.substring(0, colon);
            int port = Integer.parseInt(first.substring(colon + 1));
            listener = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
            daemon(() -> {
                while (!listener.isClosed()) {
                    java.net.Socket client = listener.accept();
                    track(client);
                    if (frozen) {
                        daemon(() -> pump(client, null));
                        continue;
                    }
                    java.net.Socket server = track(new java.net.Socket(host, port));
                    daemon(() -> pump(client, server));
                    daemon(() -> pump(server, client));
                }
            });
        }

        String connectString() {
            return "127.0.0.1:" + listener.getLocalPort();
        }

        void freeze() {
            frozen = true;
        }

        private synchronized java.net.Socket track(java.net.Socket sock) throws java.io.IOException {
            if (listener.isClosed()) {
                sock.close();
            }
            sockets.add(sock);
            return sock;
        }

        /** Copies from to to until either closes; drops what it reads once frozen. */
        private void pump(java.net.Socket from, java.net.Socket to) throws java.io.IOException {
            byte[] buf = new byte[8192];
            java.io.InputStream in = from.getInputStream();
            int n;
            while ((n = in.read(buf)) >= 0) {
                if (!frozen && to != null) {
                    to.getOutputStream().write(buf, 0, n);
                }
            }
            if (to != null) {
                to.close();
            }
        }

        private static void daemon(Body body) {
            Thread t = new Thread(() -> {
                try {
                    body.run();
                } catch (Exception ignored) {
                    // A closed socket ends the pump or the accept loop.
                }
            }, "proxy");
            t.setDaemon(true);
            t.start();
        }

        @Override
        public synchronized void close() throws java.io.IOException {
            listener.close();
            for (java.net.Socket sock : sockets) {
                sock.close();
            }
        }
    }

    /** Runs the bodies on threads and waits for all of them (bounded); the first error is rethrown. */
    static void runAll(List<Body> bodies, long timeoutMs) throws Exception {
        AtomicReference<Throwable> error = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (Body b : bodies) {
            Thread t = new Thread(() -> {
                try {
                    b.run();
                } catch (Throwable e) {
                    error.compareAndSet(null, e);
                }
            }, "worker");
            t.setDaemon(true);
            threads.add(t);
        }
        threads.forEach(Thread::start);
        long deadline = System.currentTimeMillis() + timeoutMs;
        try {
            for (Thread t : threads) {
                t.join(Math.max(1, deadline - System.currentTimeMillis()));
                if (t.isAlive()) {
                    throw new AssertionError("a worker thread did not finish within " + timeoutMs + " ms");
                }
            }
        } finally {
            threads.forEach(Thread::interrupt);
        }
        Throwable e = error.get();
        if (e instanceof Exception) {
            throw (Exception) e;
        }
        if (e instanceof Error) {
            throw (Error) e;
        }
    }

    /** Waits (bounded) until path exists, or (exists=false) is gone, using exists watches. */
    static void awaitExists(CuratorFramework c, String path, boolean exists, long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            CountDownLatch fired = new CountDownLatch(1);
            Watcher w = (WatchedEvent e) -> fired.countDown();
            Stat st = c.checkExists().usingWatcher(w).forPath(path);
            if ((st != null) == exists) {
                return;
            }
            long left = deadline - System.currentTimeMillis();
            expect(left > 0 && fired.await(left, TimeUnit.MILLISECONDS),
                    "%s still %s after %d ms", path, exists ? "absent" : "present", timeoutMs);
        }
    }

    /** Waits (bounded) until path holds want, using data watches. */
    static void awaitData(CuratorFramework c, String path, String want, long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            CountDownLatch fired = new CountDownLatch(1);
            Watcher w = (WatchedEvent e) -> fired.countDown();
            String got = str(c.getData().usingWatcher(w).forPath(path));
            if (want.equals(got)) {
                return;
            }
            long left = deadline - System.currentTimeMillis();
            expect(left > 0 && fired.await(left, TimeUnit.MILLISECONDS),
                    "%s holds %s, not %s, after %d ms", path, got, want, timeoutMs);
        }
    }

    /**
     * Called before a session reads what another session wrote. In an ensemble the two may sit
     * on different servers, and ZooKeeper promises a session only its own order: sync brings
     * this one's server up to the leader first. A standalone server must be current without
     * it, so there nothing is sent.
     */
    static void catchUp(CuratorFramework c, String path) throws Exception {
        if (!CLUSTER) {
            return;
        }
        CountDownLatch done = new CountDownLatch(1);
        AtomicInteger rc = new AtomicInteger();
        c.getZookeeperClient().getZooKeeper().sync(path, (code, p, ctx) -> {
            rc.set(code);
            done.countDown();
        }, null);
        expect(done.await(10, TimeUnit.SECONDS), "sync %s: no answer within 10 s", path);
        expectEq(0, rc.get(), "result code of sync " + path);
    }

    static int readInt(CuratorFramework c, String path) throws Exception {
        return Integer.parseInt(str(c.getData().forPath(path)));
    }

    static void cleanup() {
        try (Scope s = new Scope()) {
            CuratorFramework c = s.client();
            c.delete().deletingChildrenIfNeeded().forPath(base);
            System.out.println("curator: removed " + base);
        } catch (KeeperException.NoNodeException e) {
            // Nothing was created.
        } catch (Throwable e) {
            System.out.println("curator: could not remove " + base + ": " + e);
        }
    }

    // ---- checks ---------------------------------------------------------

    static void crud() throws Exception {
        try (Scope s = new Scope()) {
            CuratorFramework c = s.client();
            String p = base + "/crud/a/b";
            c.create().creatingParentContainersIfNeeded().forPath(p, bytes("v0"));
            Stat parent = c.checkExists().forPath(base + "/crud/a");
            expect(parent != null, "parent %s/crud/a was not created", base);
            // ZooKeeper reports 0, not its internal container marker, to clients.
            expectEq(0L, parent.getEphemeralOwner(), "ephemeralOwner of a container parent");
            expectEq("v0", str(c.getData().forPath(p)), "data after create");
            Stat st = c.setData().withVersion(0).forPath(p, bytes("v1"));
            expectEq(1, st.getVersion(), "version after setData");
            try {
                c.setData().withVersion(0).forPath(p, bytes("v2"));
                throw new AssertionError("setData with a stale version succeeded");
            } catch (KeeperException.BadVersionException expected) {
                // as ZooKeeper does
            }
            expectEq(List.of("b"), c.getChildren().forPath(base + "/crud/a"), "children");

            // A namespaced client sees the same node under a shorter path.
            CuratorFramework ns = c.usingNamespace(base.substring(1) + "/crud");
            expectEq("v1", str(ns.getData().forPath("/a/b")), "data through a namespace");

            // Background create, answered through a callback.
            CountDownLatch done = new CountDownLatch(1);
            AtomicReference<String> created = new AtomicReference<>();
            c.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).inBackground((cl, event) -> {
                created.set(event.getName());
                done.countDown();
            }).forPath(base + "/crud/a/seq-", bytes("x"));
            expect(done.await(10, TimeUnit.SECONDS), "background create not answered in 10 s");
            expect(created.get() != null && created.get().matches(".*/seq-\\d{10}"), "sequential name %s", created.get());

            c.delete().deletingChildrenIfNeeded().forPath(base + "/crud");
            expect(c.checkExists().forPath(base + "/crud") == null, "%s/crud survived its delete", base);
        }
    }

    /**
     * The children of a lock's or a queue's container, or none once it is gone: an empty
     * container is reaped within znode.container.checkIntervalMs (1 s in these runs), so a
     * check after the last release may find no node at all.
     */
    static List<String> childrenOrNone(CuratorFramework c, String path) throws Exception {
        try {
            return c.getChildren().forPath(path);
        } catch (KeeperException.NoNodeException reaped) {
            return List.of();
        }
    }

    static void mutex() throws Exception {
        final int clients = 4;
        final int threadsPerClient = 2;
        final int rounds = 15;
        String lockPath = base + "/mutex/lock";
        String counter = base + "/mutex/counter";
        AtomicInteger holders = new AtomicInteger();
        AtomicInteger maxHolders = new AtomicInteger();
        AtomicInteger acquired = new AtomicInteger();
        try (Scope s = new Scope()) {
            CuratorFramework first = s.client();
            first.create().creatingParentsIfNeeded().forPath(counter, bytes("0"));
            List<Body> bodies = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                CuratorFramework c = i == 0 ? first : s.client();
                for (int t = 0; t < threadsPerClient; t++) {
                    bodies.add(() -> {
                        InterProcessMutex m = new InterProcessMutex(c, lockPath);
                        for (int r = 0; r < rounds; r++) {
                            expect(m.acquire(30, TimeUnit.SECONDS), "lock not acquired in 30 s");
                            try {
                                int h = holders.incrementAndGet();
                                maxHolders.accumulateAndGet(h, Math::max);
                                acquired.incrementAndGet();
                                // Read-modify-write with no version: only the lock keeps it exact.
                                int v = readInt(c, counter);
                                Thread.yield();
                                c.setData().forPath(counter, bytes(Integer.toString(v + 1)));
                                holders.decrementAndGet();
                            } finally {
                                m.release();
                            }
                        }
                    });
                }
            }
            runAll(bodies, 50_000);
            int total = clients * threadsPerClient * rounds;
            expectEq(1, maxHolders.get(), "most holders of the mutex at once");
            expectEq(total, acquired.get(), "acquisitions");
            catchUp(first, counter);
            expectEq(total, readInt(first, counter), "counter incremented under the mutex");
            expectEq(List.of(), childrenOrNone(first, lockPath), "lock nodes left after every release");
        }
    }

    static void readWriteLock() throws Exception {
        String lockPath = base + "/rwlock/lock";
        String counter = base + "/rwlock/counter";
        try (Scope s = new Scope()) {
            CuratorFramework a = s.client();
            CuratorFramework b = s.client();
            CuratorFramework w = s.client();
            a.create().creatingParentsIfNeeded().forPath(counter, bytes("0"));
            InterProcessReadWriteLock la = new InterProcessReadWriteLock(a, lockPath);
            InterProcessReadWriteLock lb = new InterProcessReadWriteLock(b, lockPath);
            InterProcessReadWriteLock lw = new InterProcessReadWriteLock(w, lockPath);

            // Readers share; a writer waits for them; readers and writers wait for a writer.
            expect(la.readLock().acquire(10, TimeUnit.SECONDS), "first reader not admitted");
            expect(lb.readLock().acquire(10, TimeUnit.SECONDS), "second reader not admitted beside the first");
            expect(!lw.writeLock().acquire(500, TimeUnit.MILLISECONDS), "writer admitted while two readers hold the lock");
            la.readLock().release();
            expect(!lw.writeLock().acquire(500, TimeUnit.MILLISECONDS), "writer admitted while a reader holds the lock");
            lb.readLock().release();
            expect(lw.writeLock().acquire(10, TimeUnit.SECONDS), "writer not admitted once the readers left");
            expect(!la.readLock().acquire(500, TimeUnit.MILLISECONDS), "reader admitted while a writer holds the lock");
            expect(!lb.writeLock().acquire(500, TimeUnit.MILLISECONDS), "second writer admitted beside the first");
            lw.writeLock().release();
            expect(la.readLock().acquire(10, TimeUnit.SECONDS), "reader not admitted after the writer left");
            la.readLock().release();

            // Mixed contention: 3 clients x 2 threads, each op a read or a write.
            AtomicInteger readers = new AtomicInteger();
            AtomicInteger writers = new AtomicInteger();
            AtomicInteger writes = new AtomicInteger();
            AtomicInteger maxReaders = new AtomicInteger();
            AtomicReference<String> violation = new AtomicReference<>();
            List<Body> bodies = new ArrayList<>();
            CuratorFramework[] cs = {a, b, w};
            for (int i = 0; i < 6; i++) {
                CuratorFramework c = cs[i % 3];
                Random rnd = new Random(i);
                bodies.add(() -> {
                    InterProcessReadWriteLock l = new InterProcessReadWriteLock(c, lockPath);
                    for (int r = 0; r < 10; r++) {
                        if (rnd.nextInt(3) == 0) {
                            expect(l.writeLock().acquire(30, TimeUnit.SECONDS), "write lock not acquired in 30 s");
                            try {
                                int wr = writers.incrementAndGet();
                                if (wr != 1 || readers.get() != 0) {
                                    violation.compareAndSet(null, "writer beside " + (wr - 1) + " writers and " + readers.get() + " readers");
                                }
                                int v = readInt(c, counter);
                                c.setData().forPath(counter, bytes(Integer.toString(v + 1)));
                                writes.incrementAndGet();
                                writers.decrementAndGet();
                            } finally {
                                l.writeLock().release();
                            }
                        } else {
                            expect(l.readLock().acquire(30, TimeUnit.SECONDS), "read lock not acquired in 30 s");
                            try {
                                maxReaders.accumulateAndGet(readers.incrementAndGet(), Math::max);
                                if (writers.get() != 0) {
                                    violation.compareAndSet(null, "reader beside a writer");
                                }
                                readInt(c, counter);
                                readers.decrementAndGet();
                            } finally {
                                l.readLock().release();
                            }
                        }
                    }
                });
            }
            runAll(bodies, 50_000);
            expect(violation.get() == null, "exclusion broken: %s", violation.get());
            expect(writes.get() > 0, "the seeded mix made no writes");
            catchUp(a, counter);
            expectEq(writes.get(), readInt(a, counter), "counter written under the write lock");
            expectEq(List.of(), childrenOrNone(a, lockPath), "lock nodes left after every release");
        }
    }

    static void leaderLatch() throws Exception {
        final int n = 3;
        String path = base + "/latch";
        Monitor mon = new Monitor();
        // Guarded by mon: who believes it leads, and which participants were killed.
        boolean[] leading = new boolean[n];
        boolean[] dead = new boolean[n];
        int[] leaders = {0};
        String[] violation = {null};
        try (Scope s = new Scope()) {
            CuratorFramework[] cs = new CuratorFramework[n];
            LeaderLatch[] latches = new LeaderLatch[n];
            for (int i = 0; i < n; i++) {
                final int id = i;
                cs[i] = s.client();
                latches[i] = s.add(new LeaderLatch(cs[i], path, "p" + i));
                latches[i].addListener(new LeaderLatchListener() {
                    @Override
                    public void isLeader() {
                        synchronized (mon) {
                            if (!dead[id] && !leading[id]) {
                                leading[id] = true;
                                leaders[0]++;
                                if (leaders[0] > 1 && violation[0] == null) {
                                    violation[0] = "p" + id + " became leader beside another";
                                }
                            }
                            mon.notifyAll();
                        }
                    }

                    @Override
                    public void notLeader() {
                        synchronized (mon) {
                            if (leading[id]) {
                                leading[id] = false;
                                leaders[0]--;
                            }
                            mon.notifyAll();
                        }
                    }
                });
            }
            for (LeaderLatch l : latches) {
                l.start();
            }
            expect(mon.await(() -> leaders[0] == 1, 15_000), "no leader among %d latches within 15 s", n);
            int first = leaderOf(mon, leading);
            for (int i = 0; i < n; i++) {
                expectEq(i == first, latches[i].hasLeadership(), "hasLeadership of p" + i);
                catchUp(cs[i], path);
                expectEq("p" + first, latches[i].getLeader().getId(), "leader seen by p" + i);
            }
            expectEq(n, latches[0].getParticipants().size(), "participants");

            // Kill the leader's session: its ZooKeeper handle sends closeSession.
            synchronized (mon) {
                dead[first] = true;
                leading[first] = false;
                leaders[0]--;
            }
            cs[first].getZookeeperClient().getZooKeeper().close();
            expect(mon.await(() -> leaders[0] == 1, 15_000), "no new leader within 15 s after the leader's session was closed");
            int second = leaderOf(mon, leading);
            expect(second != first, "the killed participant p%d leads again", first);
            // The dead client may reconnect with a new session; close it for good.
            cs[first].close();
            Set<String> want = new TreeSet<>();
            for (int i = 0; i < n; i++) {
                if (i != first) {
                    want.add("p" + i);
                }
            }
            Set<String> seen = ids(latches[second].getParticipants());
            expectEq(want, seen, "participants after the leader's session closed");

            // Close the second leader's client outright: the last participant leads.
            synchronized (mon) {
                dead[second] = true;
                leading[second] = false;
                leaders[0]--;
            }
            cs[second].close();
            expect(mon.await(() -> leaders[0] == 1, 15_000), "no new leader within 15 s after the leader's client closed");
            int third = leaderOf(mon, leading);
            expect(third != first && third != second, "leader p%d after p%d and p%d were killed", third, first, second);
            expectEq(Set.of("p" + third), ids(latches[third].getParticipants()), "participants at the end");
            expect(latches[third].hasLeadership(), "the last participant does not report leadership");
            synchronized (mon) {
                expect(violation[0] == null, "%s", violation[0]);
            }
        }
    }

    static void leaderLatchSilent() throws Exception {
        final int n = 3;
        final int sessionMs = 4_000;
        String path = base + "/latch-silent";
        Monitor mon = new Monitor();
        // Guarded by mon. No participant is exempt here: the silent leader's client
        // suspends after 2/3 of the session timeout, before the server may expire it.
        boolean[] leading = new boolean[n];
        int[] leaders = {0};
        String[] violation = {null};
        try (Scope s = new Scope()) {
            Proxy[] proxies = new Proxy[n];
            LeaderLatch[] latches = new LeaderLatch[n];
            for (int i = 0; i < n; i++) {
                final int id = i;
                proxies[i] = s.add(new Proxy());
                CuratorFramework c = s.client(sessionMs, proxies[i].connectString());
                latches[i] = s.add(new LeaderLatch(c, path, "p" + i));
                latches[i].addListener(new LeaderLatchListener() {
                    @Override
                    public void isLeader() {
                        synchronized (mon) {
                            if (!leading[id]) {
                                leading[id] = true;
                                leaders[0]++;
                                if (leaders[0] > 1 && violation[0] == null) {
                                    violation[0] = "p" + id + " became leader beside another";
                                }
                            }
                            mon.notifyAll();
                        }
                    }

                    @Override
                    public void notLeader() {
                        synchronized (mon) {
                            if (leading[id]) {
                                leading[id] = false;
                                leaders[0]--;
                            }
                            mon.notifyAll();
                        }
                    }
                });
            }
            for (LeaderLatch l : latches) {
                l.start();
            }
            expect(mon.await(() -> leaders[0] == 1, 15_000), "no leader among %d latches within 15 s", n);
            int first = leaderOf(mon, leading);

            // The leader's connection goes silent: only the server's session expiry can
            // remove its latch node.
            long frozenAt = System.nanoTime();
            proxies[first].freeze();
            expect(mon.await(() -> !leading[first], 15_000), "silent leader p%d kept leadership 15 s", first);
            long suspendedMs = (System.nanoTime() - frozenAt) / 1_000_000;
            expect(mon.await(() -> leaders[0] == 1, 20_000), "no new leader within 20 s after the leader went silent");
            long takeoverMs = (System.nanoTime() - frozenAt) / 1_000_000;
            int second = leaderOf(mon, leading);
            expect(second != first, "silent participant p%d leads again", first);
            System.out.printf("     latch: silent leader p%d stepped down after %d ms, p%d took over after %d ms%n",
                    first, suspendedMs, second, takeoverMs);
            // The server must not expire a session long before its timeout.
            expect(takeoverMs >= sessionMs / 2, "session expired %d ms after its client went silent (timeout %d ms)",
                    takeoverMs, sessionMs);
            Set<String> want = new TreeSet<>();
            for (int i = 0; i < n; i++) {
                if (i != first) {
                    want.add("p" + i);
                }
            }
            expectEq(want, ids(latches[second].getParticipants()), "participants after the silent leader's session expired");
            // Its client would wait on the silent connection while closing; cut it first.
            proxies[first].close();
            synchronized (mon) {
                expect(violation[0] == null, "%s", violation[0]);
            }
        }
    }

    static int leaderOf(Monitor mon, boolean[] leading) {
        synchronized (mon) {
            for (int i = 0; i < leading.length; i++) {
                if (leading[i]) {
                    return i;
                }
            }
        }
        throw new AssertionError("no leader");
    }

    static Set<String> ids(Collection<Participant> ps) {
        return ps.stream().map(Participant::getId).collect(Collectors.toCollection(TreeSet::new));
    }

    static void leaderSelector() throws Exception {
        final int n = 3;
        final int sessionMs = 4_000;
        String path = base + "/selector";
        Monitor mon = new Monitor();
        // Guarded by mon. A killed participant may learn of its lost session after the
        // server has already handed leadership on (the client closes the old session
        // before it reports LOST), so it stops counting from the moment it is killed.
        boolean[] leading = new boolean[n];
        boolean[] dead = new boolean[n];
        int[] leader = {-1};
        int[] terms = {0};
        boolean[] stop = new boolean[n];
        String[] violation = {null};
        BooleanSupplier oneLeader = () -> {
            int count = 0;
            for (int i = 0; i < n; i++) {
                if (leading[i] && !dead[i]) {
                    count++;
                }
            }
            return count == 1;
        };
        try (Scope s = new Scope()) {
            CuratorFramework[] cs = new CuratorFramework[n];
            LeaderSelector[] sels = new LeaderSelector[n];
            for (int i = 0; i < n; i++) {
                final int id = i;
                cs[i] = s.client(sessionMs);
                sels[i] = s.add(new LeaderSelector(cs[i], path, new LeaderSelectorListenerAdapter() {
                    @Override
                    public void takeLeadership(CuratorFramework client) throws Exception {
                        synchronized (mon) {
                            for (int j = 0; j < n; j++) {
                                if (j != id && leading[j] && !dead[j] && violation[0] == null) {
                                    violation[0] = "p" + id + " took leadership while p" + j + " held it";
                                }
                            }
                            leading[id] = true;
                            terms[0]++;
                            leader[0] = id;
                            mon.notifyAll();
                        }
                        try {
                            // Lead until told to stop or interrupted (lost connection, close).
                            mon.await(() -> stop[id], 55_000);
                        } finally {
                            synchronized (mon) {
                                leading[id] = false;
                                mon.notifyAll();
                            }
                        }
                    }
                }));
                sels[i].setId("p" + i);
            }
            for (LeaderSelector sel : sels) {
                sel.start();
            }
            expect(mon.await(oneLeader, 15_000), "no leader among %d selectors within 15 s", n);
            int first;
            synchronized (mon) {
                first = leader[0];
            }
            for (int i = 0; i < n; i++) {
                expectEq(i == first, sels[i].hasLeadership(), "hasLeadership of p" + i);
                expectEq("p" + first, sels[i].getLeader().getId(), "leader seen by p" + i);
            }
            expectEq(n, sels[0].getParticipants().size(), "participants");

            // Expire the leader's session the way Curator's own tests do: the client drops
            // its connection and reports Expired; Curator opens a new session, and the
            // old one ends by closeSession, by the server's expiry, or by the recipe
            // deleting its lock node from the new session, whichever comes first.
            long oldSession = cs[first].getZookeeperClient().getZooKeeper().getSessionId();
            Monitor stateMon = new Monitor();
            List<ConnectionState> states = new ArrayList<>();
            cs[first].getConnectionStateListenable().addListener((c, st) -> {
                synchronized (stateMon) {
                    states.add(st);
                    stateMon.notifyAll();
                }
            });
            long killedAt = System.nanoTime();
            synchronized (mon) {
                dead[first] = true;
            }
            cs[first].getZookeeperClient().getZooKeeper().getTestable().injectSessionExpiration();
            expect(mon.await(() -> terms[0] == 2 && oneLeader.getAsBoolean(), 20_000),
                    "no new leader within 20 s after the leader's session expired");
            long takeoverMs = (System.nanoTime() - killedAt) / 1_000_000;
            int second;
            synchronized (mon) {
                second = leader[0];
            }
            expect(second != first, "the expired participant p%d leads again", first);
            System.out.printf("     selector: p%d took over from p%d %d ms after the expiry%n", second, first, takeoverMs);

            // The expired client gets a new session from the server and reconnects.
            expect(stateMon.await(() -> states.contains(ConnectionState.LOST) && states.contains(ConnectionState.RECONNECTED), 20_000),
                    "expired client did not report LOST then RECONNECTED within 20 s (states %s)", states);
            long newSession = cs[first].getZookeeperClient().getZooKeeper().getSessionId();
            expect(newSession != oldSession && newSession != 0, "expired client kept session 0x%x", oldSession);

            // The old participant node goes away.
            Set<String> want = new TreeSet<>();
            for (int i = 0; i < n; i++) {
                if (i != first) {
                    want.add("p" + i);
                }
            }
            long deadline = System.currentTimeMillis() + 20_000;
            Set<String> seen = ids(sels[second].getParticipants());
            while (!seen.equals(want) && System.currentTimeMillis() < deadline) {
                awaitChildrenChange(cs[second], path, 1_000);
                seen = ids(sels[second].getParticipants());
            }
            expectEq(want, seen, "participants after the leader's session was lost");

            // Closing the second leader's selector hands leadership to the last one.
            synchronized (mon) {
                dead[second] = true;
            }
            sels[second].close();
            expect(mon.await(() -> terms[0] == 3 && oneLeader.getAsBoolean(), 15_000),
                    "no new leader within 15 s after the leader's selector closed");
            int third;
            synchronized (mon) {
                third = leader[0];
                stop[third] = true;
                mon.notifyAll();
                expect(violation[0] == null, "%s", violation[0]);
            }
            expect(third != first && third != second, "leader p%d after p%d and p%d", third, first, second);
        }
    }

    /** Waits (bounded) for a child change under path, or for timeoutMs, whichever first. */
    static void awaitChildrenChange(CuratorFramework c, String path, long timeoutMs) throws Exception {
        CountDownLatch fired = new CountDownLatch(1);
        c.getChildren().usingWatcher((Watcher) e -> fired.countDown()).forPath(path);
        fired.await(timeoutMs, TimeUnit.MILLISECONDS);
    }

    static void curatorCache() throws Exception {
        String root = base + "/cache";
        try (Scope s = new Scope()) {
            CuratorFramework writer = s.client();
            CuratorFramework reader = s.client();
            writer.create().creatingParentsIfNeeded().forPath(root, bytes("root"));
            writer.create().forPath(root + "/a", bytes("a0"));
            writer.create().forPath(root + "/a/x", bytes("x0"));
            writer.create().forPath(root + "/b", bytes("b0"));

            Monitor mon = new Monitor();
            boolean[] initialized = {false};
            Map<CuratorCacheListener.Type, AtomicInteger> counts = new ConcurrentHashMap<>();
            CuratorCache cache = s.add(CuratorCache.build(reader, root));
            cache.listenable().addListener(CuratorCacheListener.builder()
                    .forAll((type, oldData, data) -> {
                        counts.computeIfAbsent(type, k -> new AtomicInteger()).incrementAndGet();
                        mon.signal();
                    })
                    .forInitialized(() -> {
                        synchronized (mon) {
                            initialized[0] = true;
                            mon.notifyAll();
                        }
                    })
                    .build());
            cache.start();
            expect(mon.await(() -> initialized[0], 15_000), "cache not initialized within 15 s");
            expectConverged(mon, cache, writer, root, "after the initial load");
            expectEq(4, counts.get(CuratorCacheListener.Type.NODE_CREATED).get(), "NODE_CREATED events of the initial load");

            // Creates, updates and deletes at several depths.
            writer.create().creatingParentsIfNeeded().forPath(root + "/c/d/e", bytes("e0"));
            writer.setData().forPath(root + "/a", bytes("a1"));
            writer.setData().forPath(root + "/a/x", bytes("x1"));
            writer.setData().forPath(root + "/a/x", bytes("x2"));
            writer.delete().forPath(root + "/b");
            writer.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(root + "/a/seq-", bytes("s"));
            writer.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/eph", bytes("eph"));
            expectConverged(mon, cache, writer, root, "after creates, updates and deletes");
            expect(counts.containsKey(CuratorCacheListener.Type.NODE_CHANGED), "no NODE_CHANGED event");
            expect(counts.containsKey(CuratorCacheListener.Type.NODE_DELETED), "no NODE_DELETED event");

            writer.delete().deletingChildrenIfNeeded().forPath(root + "/c");
            writer.delete().forPath(root + "/a/x");
            writer.setData().forPath(root, bytes("root1"));
            writer.delete().forPath(root + "/eph");
            expectConverged(mon, cache, writer, root, "after deleting subtrees");
            expectEq("root1", str(cache.get(root).map(ChildData::getData).orElse(null)), "cached data of the root");
        }
    }

    /** path -> data and version of every node under root, as the server has it. */
    static Map<String, String> serverTree(CuratorFramework c, String root) throws Exception {
        Map<String, String> out = new TreeMap<>();
        Deque<String> todo = new ArrayDeque<>(List.of(root));
        while (!todo.isEmpty()) {
            String p = todo.pop();
            Stat st = new Stat();
            byte[] data = c.getData().storingStatIn(st).forPath(p);
            out.put(p, str(data) + "@v" + st.getVersion());
            for (String child : c.getChildren().forPath(p)) {
                todo.push(p + "/" + child);
            }
        }
        return out;
    }

    static Map<String, String> cacheTree(CuratorCache cache) {
        Map<String, String> out = new TreeMap<>();
        cache.stream().forEach(d -> out.put(d.getPath(), str(d.getData()) + "@v" + d.getStat().getVersion()));
        return out;
    }

    static void expectConverged(Monitor mon, CuratorCache cache, CuratorFramework c, String root, String when) throws Exception {
        Map<String, String> want = serverTree(c, root);
        boolean ok = mon.await(() -> cacheTree(cache).equals(want), 15_000);
        expect(ok, "cache %s: expected %s, cached %s", when, want, cacheTree(cache));
    }

    static void distributedQueue() throws Exception {
        final int items = 100;
        String path = base + "/queue";
        QueueSerializer<String> ser = new QueueSerializer<>() {
            @Override
            public byte[] serialize(String item) {
                return bytes(item);
            }

            @Override
            public String deserialize(byte[] b) {
                return str(b);
            }
        };
        Map<String, AtomicInteger> consumed = new ConcurrentHashMap<>();
        Map<Integer, AtomicInteger> byConsumer = new ConcurrentHashMap<>();
        CountDownLatch all = new CountDownLatch(items);
        try (Scope s = new Scope()) {
            List<DistributedQueue<String>> consumers = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                final int id = i;
                CuratorFramework c = s.client();
                QueueConsumer<String> consumer = new QueueConsumer<>() {
                    @Override
                    public void consumeMessage(String item) {
                        consumed.computeIfAbsent(item, k -> new AtomicInteger()).incrementAndGet();
                        byConsumer.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet();
                        all.countDown();
                    }

                    @Override
                    public void stateChanged(CuratorFramework client, ConnectionState state) {
                    }
                };
                DistributedQueue<String> q = s.add(QueueBuilder.builder(c, consumer, ser, path).buildQueue());
                consumers.add(q);
                q.start();
            }
            List<Body> producers = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                final int id = i;
                CuratorFramework c = s.client();
                DistributedQueue<String> q = s.add(QueueBuilder.builder(c, null, ser, path).buildQueue());
                q.start();
                producers.add(() -> {
                    for (int k = id; k < items; k += 2) {
                        q.put("item-" + k);
                    }
                });
            }
            runAll(producers, 30_000);
            expect(all.await(30, TimeUnit.SECONDS), "%d of %d items consumed within 30 s", items - all.getCount(), items);
            // Closing the consumers freezes the counts.
            for (DistributedQueue<String> q : consumers) {
                q.close();
            }
            Set<String> want = new HashSet<>();
            for (int k = 0; k < items; k++) {
                want.add("item-" + k);
            }
            expectEq(want, consumed.keySet(), "items consumed");
            List<String> twice = consumed.entrySet().stream().filter(e -> e.getValue().get() != 1)
                    .map(e -> e.getKey() + " x" + e.getValue().get()).sorted().collect(Collectors.toList());
            expectEq(List.of(), twice, "items consumed more than once");
            CuratorFramework c = s.client();
            expectEq(List.of(), childrenOrNone(c, path), "queue nodes left after consumption");
            System.out.printf("     queue: consumed per consumer %s%n", new TreeMap<>(byConsumer));
        }
    }

    static void sharedCount() throws Exception {
        final int clients = 4;
        final int rounds = 20;
        String path = base + "/sharedcount";
        Monitor mon = new Monitor();
        try (Scope s = new Scope()) {
            List<SharedCount> counts = new ArrayList<>();
            int[] lastSeen = new int[clients];
            for (int i = 0; i < clients; i++) {
                final int id = i;
                SharedCount sc = s.add(new SharedCount(s.client(), path, 0));
                sc.addListener(new SharedCountListener() {
                    @Override
                    public void countHasChanged(SharedCountReader r, int newCount) {
                        synchronized (mon) {
                            lastSeen[id] = Math.max(lastSeen[id], newCount);
                            mon.notifyAll();
                        }
                    }

                    @Override
                    public void stateChanged(CuratorFramework client, ConnectionState state) {
                    }
                });
                sc.start();
                counts.add(sc);
            }
            AtomicInteger conflicts = new AtomicInteger();
            List<Body> bodies = new ArrayList<>();
            for (SharedCount sc : counts) {
                bodies.add(() -> {
                    long deadline = System.currentTimeMillis() + 40_000;
                    for (int r = 0; r < rounds; r++) {
                        while (true) {
                            expect(System.currentTimeMillis() < deadline, "increments not done within 40 s");
                            VersionedValue<Integer> v = sc.getVersionedValue();
                            if (sc.trySetCount(v, v.getValue() + 1)) {
                                break;
                            }
                            conflicts.incrementAndGet();
                        }
                    }
                });
            }
            runAll(bodies, 45_000);
            int total = clients * rounds;
            CuratorFramework c = s.client();
            byte[] raw = c.getData().forPath(path);
            expectEq(4, raw.length, "bytes of the SharedCount node");
            expectEq(total, java.nio.ByteBuffer.wrap(raw).getInt(), "SharedCount on the server");
            expect(mon.await(() -> Arrays.stream(lastSeen).allMatch(v -> v == total), 15_000),
                    "listeners saw %s, not %d everywhere", Arrays.toString(lastSeen), total);
            for (SharedCount sc : counts) {
                expectEq(total, sc.getCount(), "SharedCount.getCount");
            }
            System.out.printf("     sharedcount: %d version conflicts retried%n", conflicts.get());
        }
    }

    static void atomicLong() throws Exception {
        final int clients = 4;
        final int threadsPerClient = 2;
        final int rounds = 15;
        String path = base + "/atomiclong";
        try (Scope s = new Scope()) {
            List<Body> bodies = new ArrayList<>();
            AtomicInteger retried = new AtomicInteger();
            for (int i = 0; i < clients; i++) {
                CuratorFramework c = s.client();
                // Half the clients promote to a lock when optimistic tries keep failing.
                DistributedAtomicLong al = i % 2 == 0
                        ? new DistributedAtomicLong(c, path, new RetryNTimes(3, 10))
                        : new DistributedAtomicLong(c, path, new RetryNTimes(3, 10), PromotedToLock.builder()
                                .lockPath(base + "/atomiclong-lock").retryPolicy(new RetryNTimes(3, 10))
                                .timeout(10, TimeUnit.SECONDS).build());
                for (int t = 0; t < threadsPerClient; t++) {
                    bodies.add(() -> {
                        long deadline = System.currentTimeMillis() + 40_000;
                        for (int r = 0; r < rounds; r++) {
                            while (true) {
                                expect(System.currentTimeMillis() < deadline, "increments not done within 40 s");
                                AtomicValue<Long> v = al.increment();
                                if (v.succeeded()) {
                                    expectEq(v.preValue() + 1, (long) v.postValue(), "postValue of an increment");
                                    break;
                                }
                                retried.incrementAndGet();
                            }
                        }
                    });
                }
            }
            runAll(bodies, 45_000);
            long total = clients * threadsPerClient * rounds;
            CuratorFramework c = s.client();
            DistributedAtomicLong al = new DistributedAtomicLong(c, path, new RetryNTimes(3, 10));
            AtomicValue<Long> got = al.get();
            expect(got.succeeded(), "get did not succeed");
            expectEq(total, got.postValue(), "DistributedAtomicLong after concurrent increments");
            AtomicValue<Long> bad = al.compareAndSet(total + 1, 5L);
            expect(!bad.succeeded(), "compareAndSet with a wrong expected value succeeded");
            AtomicValue<Long> good = al.compareAndSet(total, 1000L);
            expect(good.succeeded(), "compareAndSet with the right expected value failed");
            expectEq(1000L, al.get().postValue(), "value after compareAndSet");
            System.out.printf("     atomiclong: %d increments retried%n", retried.get());
        }
    }

    static void persistentNode() throws Exception {
        String path = base + "/pnode/member";
        try (Scope s = new Scope()) {
            CuratorFramework owner = s.client();
            CuratorFramework other = s.client();
            other.create().creatingParentsIfNeeded().forPath(base + "/pnode", bytes(""));
            PersistentNode node = s.add(new PersistentNode(owner, CreateMode.EPHEMERAL, false, path, bytes("m0")));
            node.start();
            expect(node.waitForInitialCreate(10, TimeUnit.SECONDS), "PersistentNode not created within 10 s");
            catchUp(other, path);
            Stat st = new Stat();
            expectEq("m0", str(other.getData().storingStatIn(st).forPath(path)), "data of the PersistentNode");
            long session = owner.getZookeeperClient().getZooKeeper().getSessionId();
            expectEq(session, st.getEphemeralOwner(), "ephemeralOwner of the PersistentNode");

            // Another client deletes it: the recipe's watch recreates it.
            other.delete().forPath(path);
            awaitExists(other, path, true, 10_000);
            expectEq("m0", str(other.getData().forPath(path)), "data of the recreated node");

            node.setData(bytes("m1"));
            awaitData(other, path, "m1", 10_000);

            node.close();
            catchUp(other, path);
            expect(other.checkExists().forPath(path) == null, "PersistentNode survived its close");
        }
    }

    static void persistentTtlNode() throws Exception {
        final long ttlMs = 1_000;
        String path = base + "/ttl/node";
        try (Scope s = new Scope()) {
            CuratorFramework owner = s.client();
            CuratorFramework other = s.client();
            other.create().creatingParentsIfNeeded().forPath(base + "/ttl", bytes(""));
            PersistentTtlNode node = s.add(new PersistentTtlNode(owner, path, ttlMs, bytes("t0")));
            long started = System.nanoTime();
            node.start();
            expect(node.waitForInitialCreate(10, TimeUnit.SECONDS), "PersistentTtlNode not created within 10 s");
            catchUp(other, path);
            Stat st = new Stat();
            expectEq("t0", str(other.getData().storingStatIn(st).forPath(path)), "data of the PersistentTtlNode");
            // The node is a container; its "touch" child is a TTL node the recipe keeps touching.
            // Containers and TTL nodes show ephemeralOwner 0 to clients, as in ZooKeeper.
            expectEq(0L, st.getEphemeralOwner(), "ephemeralOwner of the container");
            String touch = path + "/" + PersistentTtlNode.DEFAULT_CHILD_NODE_NAME;
            awaitExists(other, touch, true, 10_000);
            Stat ts = other.checkExists().forPath(touch);
            expect(ts != null, "TTL child %s vanished right after its creation", touch);
            long czxid = ts.getCzxid();
            long containerCzxid = st.getCzxid();
            expectEq(0L, ts.getEphemeralOwner(), "ephemeralOwner of the TTL child");

            // Outlive several TTLs: wait for the child's mtime to move 4 times.
            long mtime = ts.getMtime();
            int touches = 0;
            long deadline = System.currentTimeMillis() + 15_000;
            while (touches < 4) {
                CountDownLatch fired = new CountDownLatch(1);
                Stat now = other.checkExists().usingWatcher((Watcher) e -> fired.countDown()).forPath(touch);
                expect(now != null, "TTL child %s vanished while the recipe ran (after %d touches)", touch, touches);
                // Touched in place, never expired and recreated.
                expectEq(czxid, now.getCzxid(), "czxid of the TTL child after " + touches + " touches");
                if (now.getMtime() != mtime) {
                    mtime = now.getMtime();
                    touches++;
                    continue;
                }
                long left = deadline - System.currentTimeMillis();
                expect(left > 0 && fired.await(left, TimeUnit.MILLISECONDS), "TTL child touched %d times in 15 s", touches);
            }
            long aliveMs = (System.nanoTime() - started) / 1_000_000;
            expect(aliveMs > 2 * ttlMs, "touched 4 times in %d ms, under two TTLs", aliveMs);
            Stat container = other.checkExists().forPath(path);
            expect(container != null, "PersistentTtlNode gone while the recipe ran");
            expectEq(containerCzxid, container.getCzxid(), "czxid of the container (reaped and recreated?)");

            // Closed, the touches stop: the TTL child expires, then the empty container is reaped.
            node.close();
            long closedAt = System.nanoTime();
            awaitExists(other, path, false, 25_000);
            System.out.printf("     ttl: alive %d ms with %d touches, reaped %d ms after close%n",
                    aliveMs, touches, (System.nanoTime() - closedAt) / 1_000_000);
        }
    }

    static void transactionOk() throws Exception {
        String dir = base + "/tx-ok";
        try (Scope s = new Scope()) {
            CuratorFramework c = s.client();
            c.create().creatingParentsIfNeeded().forPath(dir, bytes(""));
            List<CuratorOp> ops = List.of(
                    c.transactionOp().create().forPath(dir + "/a", bytes("a0")),
                    c.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(dir + "/s-", bytes("s")),
                    c.transactionOp().setData().forPath(dir + "/a", bytes("a1")),
                    c.transactionOp().check().withVersion(1).forPath(dir + "/a"));
            List<CuratorTransactionResult> res = c.transaction().forOperations(ops);
            expectEq(4, res.size(), "results");
            expectEq(List.of(OperationType.CREATE, OperationType.CREATE, OperationType.SET_DATA, OperationType.CHECK),
                    res.stream().map(CuratorTransactionResult::getType).collect(Collectors.toList()), "result types");
            expectEq(dir + "/a", res.get(0).getResultPath(), "path of the first create");
            String seq = res.get(1).getResultPath();
            expect(seq != null && seq.matches(java.util.regex.Pattern.quote(dir) + "/s-\\d{10}"), "sequential path %s", seq);
            expectEq(1, res.get(2).getResultStat().getVersion(), "version in the setData result");
            for (CuratorTransactionResult r : res) {
                expectEq(0, r.getError(), "error of " + r.getType());
            }
            Stat st = new Stat();
            expectEq("a1", str(c.getData().storingStatIn(st).forPath(dir + "/a")), "data after the transaction");
            // Every op of one transaction carries the same zxid.
            expectEq(st.getCzxid(), st.getMzxid(), "czxid vs mzxid of a node created and set in one transaction");
            expectEq(st.getMzxid(), c.checkExists().forPath(seq).getCzxid(), "zxid shared by the transaction's ops");

            List<CuratorTransactionResult> del = c.transaction().forOperations(List.of(
                    c.transactionOp().delete().withVersion(1).forPath(dir + "/a"),
                    c.transactionOp().delete().forPath(seq)));
            expectEq(2, del.size(), "results of the delete transaction");
            expectEq(List.of(), c.getChildren().forPath(dir), "children after the delete transaction");
        }
    }

    static void transactionFails() throws Exception {
        String dir = base + "/tx-fail";
        try (Scope s = new Scope()) {
            CuratorFramework c = s.client();
            c.create().creatingParentsIfNeeded().forPath(dir + "/a", bytes("a0"));
            Stat before = c.checkExists().forPath(dir + "/a");

            // A stale version in the second op: the first op's create must not happen.
            try {
                c.transaction().forOperations(List.of(
                        c.transactionOp().create().forPath(dir + "/new", bytes("n")),
                        c.transactionOp().setData().withVersion(7).forPath(dir + "/a", bytes("a1")),
                        c.transactionOp().create().forPath(dir + "/new2", bytes("n"))));
                throw new AssertionError("transaction with a stale version committed");
            } catch (KeeperException.BadVersionException e) {
                List<OpResult> results = e.getResults();
                expect(results != null && results.size() == 3, "results of the failed multi: %s", results);
                int[] codes = results.stream().mapToInt(r -> ((OpResult.ErrorResult) r).getErr()).toArray();
                expectEq(Arrays.toString(new int[] {
                        KeeperException.Code.OK.intValue(),
                        KeeperException.Code.BADVERSION.intValue(),
                        KeeperException.Code.RUNTIMEINCONSISTENCY.intValue()}),
                        Arrays.toString(codes), "error codes of the failed multi");
            }
            expect(c.checkExists().forPath(dir + "/new") == null, "create of a failed transaction happened");
            expect(c.checkExists().forPath(dir + "/new2") == null, "later create of a failed transaction happened");

            // The last op creates under a parent the op before it deleted.
            try {
                c.transaction().forOperations(List.of(
                        c.transactionOp().setData().forPath(dir + "/a", bytes("a2")),
                        c.transactionOp().delete().forPath(dir + "/a"),
                        c.transactionOp().create().forPath(dir + "/a/child", bytes("c"))));
                throw new AssertionError("transaction creating under a deleted parent committed");
            } catch (KeeperException.NoNodeException expected) {
                // the parent was deleted by the op before it
            }
            Stat after = new Stat();
            expectEq("a0", str(c.getData().storingStatIn(after).forPath(dir + "/a")), "data after failed transactions");
            expectEq(before.getMzxid(), after.getMzxid(), "mzxid after failed transactions");
            expectEq(before.getVersion(), after.getVersion(), "version after failed transactions");
            expectEq(List.of("a"), c.getChildren().forPath(dir), "children after failed transactions");

            // A check op alone can fail a transaction.
            try {
                c.transaction().forOperations(List.of(
                        c.transactionOp().delete().forPath(dir + "/a"),
                        c.transactionOp().check().forPath(dir + "/missing")));
                throw new AssertionError("transaction with a failing check committed");
            } catch (KeeperException.NoNodeException expected) {
                // check on a missing node
            }
            expect(c.checkExists().forPath(dir + "/a") != null, "delete of a failed transaction happened");
        }
    }
}
