// Curator's lock and election recipes while the ensemble's leader is killed
// (tests/compat/run.sh FLAVOR --cluster --kill-leader).
//
// Four contentions run at once, each on its own Curator clients spread over
// $ZK_HOSTS: InterProcessMutex (4 clients x 2 threads), InterProcessReadWriteLock
// (3 clients x 2 threads), LeaderLatch (3 participants, the leader hands over
// every ~150 ms) and LeaderSelector (3 participants, each term ~150 ms).
// Once every one of them has made progress, the program creates
// $ZK_KILL_DIR/curator.contending; run.sh then kill -9s the leader server and,
// when the remaining servers have a new leader, creates $ZK_KILL_DIR/recovered.
// The contentions go on until each has made progress again after that, then
// stop. Throughout, every holder and every leader is counted in this process:
// two lock holders, a writer beside anyone, or two leaders at once is a
// failure, and so is a versioned counter write that finds another holder's
// write (a lost update). The last line is "curator: N passed, M failed".

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntSupplier;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public final class CuratorKill {
    static final String NAME = "curator";
    /** Progress each contention makes before the kill, and again after the recovery. */
    static final int PROGRESS = 4;
    static final long CONTENDING_WAIT_MS = 60_000;
    static final long RECOVERED_WAIT_MS = Long.getLong("kill.recoveredWaitMs", 90_000);
    static final long AFTER_WAIT_MS = 60_000;
    /** How long a latch or selector leader keeps its term. */
    static final long TERM_MS = 150;

    static volatile boolean stop;
    static final AtomicReference<String> violation = new AtomicReference<>();
    /** Operations that failed during the disruption and were retried (not failures). */
    static final AtomicInteger retried = new AtomicInteger();
    static final AtomicInteger suspended = new AtomicInteger();
    static final AtomicInteger reconnected = new AtomicInteger();
    static final AtomicInteger lost = new AtomicInteger();

    static void violated(String what) {
        if (violation.compareAndSet(null, what)) {
            System.out.println("curator: VIOLATION " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        String dir = System.getenv("ZK_KILL_DIR");
        if (dir == null || dir.isEmpty()) {
            System.out.println("curator: ZK_KILL_DIR is not set");
            System.out.println("curator: 0 passed, 1 failed");
            System.exit(1);
        }
        Path killDir = Paths.get(dir);
        CuratorSuite.hosts = System.getenv().getOrDefault("ZK_HOSTS", "127.0.0.1:2181");
        CuratorSuite.base = "/curator-kill-" + System.currentTimeMillis() + "-" + Long.toHexString(new Random().nextLong() & 0xffffff);
        System.out.println("curator: kill-leader run on " + CuratorSuite.hosts + ", base path " + CuratorSuite.base);

        int passed = 0;
        int failed = 0;
        List<String> failures = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        try (CuratorSuite.Scope s = new CuratorSuite.Scope()) {
            CuratorFramework admin = s.client();
            Mutex mutex = new Mutex(s, admin);
            RwLock rw = new RwLock(s, admin);
            Latch latch = new Latch(s);
            Selector selector = new Selector(s);
            Contention[] all = {mutex, rw, latch, selector};
            for (Contention c : all) {
                threads.addAll(c.start());
            }

            // 1. Every contention under way.
            boolean contending = waitProgress(all, new int[all.length], CONTENDING_WAIT_MS);
            int[] atKill = progress(all);
            System.out.println("curator: contending, progress " + describe(all, atKill));
            boolean recovered = false;
            boolean after = false;
            if (contending) {
                Files.createFile(killDir.resolve(NAME + ".contending"));
                // 2. run.sh kills the leader and waits for a new one.
                recovered = waitFile(killDir.resolve("recovered"), RECOVERED_WAIT_MS);
                int[] atRecovery = progress(all);
                System.out.println("curator: recovered=" + recovered + ", progress " + describe(all, atRecovery));
                // 3. Each contention goes on after the recovery.
                if (recovered) {
                    after = waitProgress(all, atRecovery, AFTER_WAIT_MS);
                }
            }
            stop = true;
            for (Contention c : all) {
                c.stopping();
            }
            long deadline = System.currentTimeMillis() + 40_000;
            for (Thread t : threads) {
                t.join(Math.max(1, deadline - System.currentTimeMillis()));
            }
            int[] atEnd = progress(all);
            System.out.printf("curator: end, progress %s; retried %d ops; connection states: %d suspended, %d reconnected, %d lost%n",
                    describe(all, atEnd), retried.get(), suspended.get(), reconnected.get(), lost.get());

            List<String[]> results = new ArrayList<>();
            results.add(result("all four contentions under way before the kill",
                    contending ? null : violation.get() != null ? "stopped by the violation"
                            : "progress " + describe(all, atKill) + " after " + CONTENDING_WAIT_MS + " ms"));
            results.add(result("run.sh reported the new leader",
                    recovered ? null : !contending ? "not waited for: no kill without contention"
                            : "no " + killDir.resolve("recovered") + " within " + RECOVERED_WAIT_MS + " ms"));
            results.add(result("every contention went on after the recovery",
                    after ? null : "progress " + describe(all, atEnd)));
            for (Thread t : threads) {
                if (t.isAlive()) {
                    results.add(result("workers stopped", t.getName() + " still running 40 s after the stop"));
                    break;
                }
            }
            results.add(result("never two lock holders, a writer beside readers, or two leaders", violation.get()));
            for (Contention c : all) {
                results.add(result(c.name() + ": end state", c.verify(admin)));
            }
            for (String[] r : results) {
                if (r[1] == null) {
                    passed++;
                    System.out.println("PASS " + r[0]);
                } else {
                    failed++;
                    failures.add(r[0] + ": " + r[1]);
                    System.out.println("FAIL " + r[0] + ": " + r[1]);
                }
            }
            try {
                admin.delete().deletingChildrenIfNeeded().forPath(CuratorSuite.base);
            } catch (Exception e) {
                System.out.println("curator: could not remove " + CuratorSuite.base + ": " + e);
            }
        } catch (Throwable e) {
            failed++;
            System.out.println("FAIL setup: " + e);
            e.printStackTrace(System.out);
        }
        System.out.println("curator: " + passed + " passed, " + failed + " failed");
        System.out.flush();
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }

    static String[] result(String name, String why) {
        return new String[] {name, why};
    }

    static int[] progress(Contention[] all) {
        int[] out = new int[all.length];
        for (int i = 0; i < all.length; i++) {
            out[i] = all[i].progress().getAsInt();
        }
        return out;
    }

    static String describe(Contention[] all, int[] p) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < all.length; i++) {
            b.append(i == 0 ? "" : ", ").append(all[i].name()).append(' ').append(p[i]);
        }
        return b.toString();
    }

    /** Waits until every contention has made PROGRESS more than from[]; polls, bounded. */
    static boolean waitProgress(Contention[] all, int[] from, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline) {
            int[] now = progress(all);
            boolean ok = true;
            for (int i = 0; i < all.length; i++) {
                ok &= now[i] >= from[i] + PROGRESS;
            }
            if (ok) {
                return true;
            }
            if (violation.get() != null) {
                return false;
            }
            Thread.sleep(50);
        }
        return false;
    }

    /** Waits (polling, bounded) until run.sh creates the file. */
    static boolean waitFile(Path p, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(p)) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    static CuratorFramework client(CuratorSuite.Scope s) throws InterruptedException {
        CuratorFramework c = s.client();
        c.getConnectionStateListenable().addListener((cl, st) -> {
            if (st == ConnectionState.SUSPENDED) {
                suspended.incrementAndGet();
            } else if (st == ConnectionState.RECONNECTED) {
                reconnected.incrementAndGet();
            } else if (st == ConnectionState.LOST) {
                lost.incrementAndGet();
            }
        });
        return c;
    }

    interface Contention {
        String name();

        List<Thread> start() throws Exception;

        IntSupplier progress();

        default void stopping() {
        }

        /** null when the end state is right, else why not. */
        String verify(CuratorFramework admin) throws Exception;
    }

    static Thread worker(String name, CuratorSuite.Body body) {
        Thread t = new Thread(() -> {
            try {
                body.run();
            } catch (InterruptedException e) {
                // stopped
            } catch (Throwable e) {
                violated(name + " died: " + e);
                e.printStackTrace(System.out);
            }
        }, name);
        t.setDaemon(true);
        return t;
    }

    /**
     * A counter written only under the lock, as "N token": the holder reads it and writes
     * N+1 with the version it read. A write that meets a newer version is either its own
     * earlier attempt (Curator retried a write whose answer was lost: the token is its
     * own) or another holder's write, which the lock should have prevented.
     */
    static final class Counter {
        final String path;
        final AtomicInteger writes = new AtomicInteger();
        final AtomicInteger unknown = new AtomicInteger();

        Counter(String path) {
            this.path = path;
        }

        void create(CuratorFramework c) throws Exception {
            c.create().creatingParentsIfNeeded().forPath(path, CuratorSuite.bytes("0 init"));
        }

        void increment(CuratorFramework c, String token) throws Exception {
            Stat st = new Stat();
            String cur;
            try {
                cur = CuratorSuite.str(c.getData().storingStatIn(st).forPath(path));
            } catch (KeeperException.ConnectionLossException | KeeperException.SessionExpiredException e) {
                retried.incrementAndGet();
                return;
            }
            int n = Integer.parseInt(cur.split(" ")[0]);
            String mine = (n + 1) + " " + token;
            try {
                c.setData().withVersion(st.getVersion()).forPath(path, CuratorSuite.bytes(mine));
                writes.incrementAndGet();
            } catch (KeeperException.BadVersionException e) {
                String now = CuratorSuite.str(c.getData().forPath(path));
                if (mine.equals(now)) {
                    writes.incrementAndGet();
                    retried.incrementAndGet();
                } else {
                    violated("lost update on " + path + ": read '" + cur + "', then found '" + now + "' instead of '" + mine + "'");
                }
            } catch (KeeperException.ConnectionLossException | KeeperException.SessionExpiredException e) {
                // In doubt: counted at the end as possibly applied.
                unknown.incrementAndGet();
                retried.incrementAndGet();
            }
        }

        String verify(CuratorFramework admin) throws Exception {
            CuratorSuite.catchUp(admin, path);
            int n = Integer.parseInt(CuratorSuite.str(admin.getData().forPath(path)).split(" ")[0]);
            int w = writes.get();
            if (n < w || n > w + unknown.get()) {
                return "counter " + n + " after " + w + " confirmed writes (" + unknown.get() + " in doubt)";
            }
            return null;
        }
    }

    static String lockNodesLeft(CuratorFramework admin, String lockPath) throws Exception {
        // Releases that met the disruption are retried in the background (guaranteed deletes).
        long deadline = System.currentTimeMillis() + 20_000;
        List<String> left;
        while (true) {
            CuratorSuite.catchUp(admin, lockPath);
            left = admin.checkExists().forPath(lockPath) == null ? List.of() : admin.getChildren().forPath(lockPath);
            if (left.isEmpty() || System.currentTimeMillis() > deadline) {
                break;
            }
            CuratorSuite.awaitChildrenChange(admin, lockPath, 1_000);
        }
        return left.isEmpty() ? null : "lock nodes left after every release: " + left;
    }

    static final class Mutex implements Contention {
        final CuratorSuite.Scope s;
        final String lockPath = CuratorSuite.base + "/mutex/lock";
        final Counter counter = new Counter(CuratorSuite.base + "/mutex/counter");
        final AtomicInteger holders = new AtomicInteger();
        final AtomicInteger acquired = new AtomicInteger();

        Mutex(CuratorSuite.Scope s, CuratorFramework admin) throws Exception {
            this.s = s;
            counter.create(admin);
        }

        public String name() {
            return "InterProcessMutex";
        }

        public IntSupplier progress() {
            return acquired::get;
        }

        public List<Thread> start() throws Exception {
            List<Thread> out = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                CuratorFramework c = client(s);
                for (int t = 0; t < 2; t++) {
                    String who = "mutex-" + i + "-" + t;
                    out.add(worker(who, () -> {
                        InterProcessMutex m = new InterProcessMutex(c, lockPath);
                        int round = 0;
                        while (!stop) {
                            boolean got;
                            try {
                                got = m.acquire(2, TimeUnit.SECONDS);
                            } catch (InterruptedException e) {
                                throw e;
                            } catch (Exception e) {
                                retried.incrementAndGet();
                                continue;
                            }
                            if (!got) {
                                continue;
                            }
                            try {
                                if (holders.incrementAndGet() != 1) {
                                    violated(who + " acquired the mutex beside another holder");
                                }
                                try {
                                    counter.increment(c, who + "#" + round++);
                                } finally {
                                    holders.decrementAndGet();
                                }
                                acquired.incrementAndGet();
                            } finally {
                                try {
                                    m.release();
                                } catch (Exception e) {
                                    retried.incrementAndGet();
                                }
                            }
                        }
                    }));
                }
            }
            out.forEach(Thread::start);
            return out;
        }

        public String verify(CuratorFramework admin) throws Exception {
            String why = counter.verify(admin);
            return why != null ? why : lockNodesLeft(admin, lockPath);
        }
    }

    static final class RwLock implements Contention {
        final CuratorSuite.Scope s;
        final String lockPath = CuratorSuite.base + "/rwlock/lock";
        final Counter counter = new Counter(CuratorSuite.base + "/rwlock/counter");
        final AtomicInteger readers = new AtomicInteger();
        final AtomicInteger writers = new AtomicInteger();
        final AtomicInteger ops = new AtomicInteger();

        RwLock(CuratorSuite.Scope s, CuratorFramework admin) throws Exception {
            this.s = s;
            counter.create(admin);
        }

        public String name() {
            return "InterProcessReadWriteLock";
        }

        public IntSupplier progress() {
            return counter.writes::get;
        }

        public List<Thread> start() throws Exception {
            List<Thread> out = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                CuratorFramework c = client(s);
                for (int t = 0; t < 2; t++) {
                    String who = "rw-" + i + "-" + t;
                    Random rnd = new Random(i * 2 + t);
                    out.add(worker(who, () -> {
                        InterProcessReadWriteLock l = new InterProcessReadWriteLock(c, lockPath);
                        int round = 0;
                        while (!stop) {
                            boolean write = rnd.nextInt(3) == 0;
                            InterProcessMutex m = write ? l.writeLock() : l.readLock();
                            boolean got;
                            try {
                                got = m.acquire(2, TimeUnit.SECONDS);
                            } catch (InterruptedException e) {
                                throw e;
                            } catch (Exception e) {
                                retried.incrementAndGet();
                                continue;
                            }
                            if (!got) {
                                continue;
                            }
                            try {
                                if (write) {
                                    if (writers.incrementAndGet() != 1 || readers.get() != 0) {
                                        violated(who + " acquired the write lock beside " + (writers.get() - 1) + " writers and " + readers.get() + " readers");
                                    }
                                    try {
                                        counter.increment(c, who + "#" + round++);
                                    } finally {
                                        writers.decrementAndGet();
                                    }
                                } else {
                                    readers.incrementAndGet();
                                    if (writers.get() != 0) {
                                        violated(who + " acquired the read lock beside a writer");
                                    }
                                    try {
                                        c.getData().forPath(counter.path);
                                    } catch (KeeperException e) {
                                        retried.incrementAndGet();
                                    } finally {
                                        readers.decrementAndGet();
                                    }
                                }
                                ops.incrementAndGet();
                            } finally {
                                try {
                                    m.release();
                                } catch (Exception e) {
                                    retried.incrementAndGet();
                                }
                            }
                        }
                    }));
                }
            }
            out.forEach(Thread::start);
            return out;
        }

        public String verify(CuratorFramework admin) throws Exception {
            String why = counter.verify(admin);
            return why != null ? why : lockNodesLeft(admin, lockPath);
        }
    }

    /** Three LeaderLatch participants; a driver makes the leader hand over every TERM_MS. */
    static final class Latch implements Contention {
        final CuratorSuite.Scope s;
        final String path = CuratorSuite.base + "/latch";
        final int n = 3;
        final CuratorSuite.Monitor mon = new CuratorSuite.Monitor();
        // Guarded by mon.
        final boolean[] leading = new boolean[n];
        final int[] generation = new int[n];
        int leaders;
        int terms;
        final LeaderLatch[] latches = new LeaderLatch[n];
        final CuratorFramework[] cs = new CuratorFramework[n];

        Latch(CuratorSuite.Scope s) {
            this.s = s;
        }

        public String name() {
            return "LeaderLatch";
        }

        public IntSupplier progress() {
            return () -> {
                synchronized (mon) {
                    return terms;
                }
            };
        }

        /** A new latch for participant id; callbacks of its older latches are ignored. */
        LeaderLatch newLatch(int id) throws Exception {
            int gen;
            synchronized (mon) {
                gen = ++generation[id];
            }
            LeaderLatch l = new LeaderLatch(cs[id], path, "p" + id);
            l.addListener(new LeaderLatchListener() {
                @Override
                public void isLeader() {
                    synchronized (mon) {
                        if (generation[id] == gen && !leading[id]) {
                            leading[id] = true;
                            leaders++;
                            terms++;
                            if (leaders > 1) {
                                violated("latch p" + id + " became leader beside another");
                            }
                        }
                        mon.notifyAll();
                    }
                }

                @Override
                public void notLeader() {
                    synchronized (mon) {
                        if (generation[id] == gen && leading[id]) {
                            leading[id] = false;
                            leaders--;
                        }
                        mon.notifyAll();
                    }
                }
            });
            l.start();
            return l;
        }

        public List<Thread> start() throws Exception {
            for (int i = 0; i < n; i++) {
                cs[i] = client(s);
                latches[i] = newLatch(i);
            }
            Thread driver = worker("latch-driver", () -> {
                while (!stop) {
                    if (!mon.await(() -> leaders == 1 || stop, 1_000) || stop) {
                        continue;
                    }
                    Thread.sleep(TERM_MS);
                    int id = -1;
                    synchronized (mon) {
                        for (int i = 0; i < n; i++) {
                            if (leading[i]) {
                                id = i;
                            }
                        }
                        if (id < 0) {
                            continue;
                        }
                        // It stops counting as leader before its latch node goes.
                        leading[id] = false;
                        leaders--;
                        generation[id]++;
                    }
                    try {
                        latches[id].close();
                    } catch (Exception e) {
                        retried.incrementAndGet();
                    }
                    latches[id] = newLatch(id);
                }
            });
            driver.start();
            return List.of(driver);
        }

        public String verify(CuratorFramework admin) throws Exception {
            // With the driver stopped, the latches settle on exactly one leader.
            if (!mon.await(() -> leaders == 1, 20_000)) {
                synchronized (mon) {
                    return leaders + " leaders 20 s after the churn stopped";
                }
            }
            for (LeaderLatch l : latches) {
                l.close();
            }
            return null;
        }
    }

    /** Three LeaderSelector participants (autoRequeue), each term TERM_MS. */
    static final class Selector implements Contention {
        final CuratorSuite.Scope s;
        final String path = CuratorSuite.base + "/selector";
        final int n = 3;
        final CuratorSuite.Monitor mon = new CuratorSuite.Monitor();
        // Guarded by mon.
        final boolean[] leading = new boolean[n];
        int terms;
        final LeaderSelector[] sels = new LeaderSelector[n];

        Selector(CuratorSuite.Scope s) {
            this.s = s;
        }

        public String name() {
            return "LeaderSelector";
        }

        public IntSupplier progress() {
            return () -> {
                synchronized (mon) {
                    return terms;
                }
            };
        }

        public List<Thread> start() throws Exception {
            for (int i = 0; i < n; i++) {
                final int id = i;
                CuratorFramework c = client(s);
                sels[i] = s.add(new LeaderSelector(c, path, new LeaderSelectorListenerAdapter() {
                    @Override
                    public void takeLeadership(CuratorFramework client) throws Exception {
                        synchronized (mon) {
                            for (int j = 0; j < n; j++) {
                                if (j != id && leading[j]) {
                                    violated("selector p" + id + " took leadership while p" + j + " held it");
                                }
                            }
                            leading[id] = true;
                            terms++;
                            mon.notifyAll();
                        }
                        try {
                            Thread.sleep(TERM_MS);
                        } finally {
                            synchronized (mon) {
                                leading[id] = false;
                                mon.notifyAll();
                            }
                        }
                    }
                }));
                sels[i].setId("p" + i);
                sels[i].autoRequeue();
            }
            for (LeaderSelector sel : sels) {
                sel.start();
            }
            return List.of();
        }

        @Override
        public void stopping() {
            for (LeaderSelector sel : sels) {
                sel.close();
            }
        }

        public String verify(CuratorFramework admin) throws Exception {
            if (!mon.await(() -> {
                for (boolean b : leading) {
                    if (b) {
                        return false;
                    }
                }
                return true;
            }, 10_000)) {
                return "a selector still leads 10 s after every selector was closed";
            }
            return lockNodesLeft(admin, path);
        }
    }
}
