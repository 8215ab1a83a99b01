package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

var worldAll = zk.WorldACL(zk.PermAll)

// runMain runs every check against the server in hosts, under the path base.
func runMain(hosts, base string) {
	s1, err := dial("s1", hosts, 10*time.Second)
	if !check("connect: a session from "+hosts, err) {
		return
	}
	defer s1.Close()
	check("connect: the session id is not 0", func() error {
		if s1.SessionID() == 0 {
			return fmt.Errorf("session id 0")
		}
		return nil
	}())
	s2, err := dial("s2", hosts, 10*time.Second)
	if !check("connect: a second session, another id", func() error {
		if err != nil {
			return err
		}
		if s2.SessionID() == s1.SessionID() {
			return fmt.Errorf("both sessions have id %#x", s1.SessionID())
		}
		return nil
	}()) {
		return
	}
	defer s2.Close()

	if !check("create: a persistent node returns its path", func() error {
		p, err := s1.Create(base, []byte("base"), 0, worldAll)
		if err != nil {
			return err
		}
		if p != base {
			return fmt.Errorf("path %q, want %q", p, base)
		}
		return nil
	}()) {
		return
	}
	crud(s1, s2, base)
	ephemeralSequential(hosts, s2, base)
	watches(s1, s2, base)
	multi(s1, base)
	acls(hosts, s1, s2, base)
	cleanup(s1, base)
}

func crud(s1, s2 *client, base string) {
	a := base + "/a"
	check("create: data and Stat of a new node", func() error {
		if _, err := s1.Create(a, []byte("one"), 0, worldAll); err != nil {
			return err
		}
		data, st, err := s1.Get(a)
		if err != nil {
			return err
		}
		if string(data) != "one" {
			return fmt.Errorf("data %q", data)
		}
		if st.Version != 0 || st.Cversion != 0 || st.Aversion != 0 || st.DataLength != 3 ||
			st.NumChildren != 0 || st.EphemeralOwner != 0 || st.Czxid != st.Mzxid ||
			st.Czxid == 0 || st.Ctime != st.Mtime || st.Ctime == 0 {
			return fmt.Errorf("stat %+v", *st)
		}
		return nil
	}())
	check("create: an existing path -> ErrNodeExists", func() error {
		_, err := s2.Create(a, nil, 0, worldAll)
		return wantErr(err, zk.ErrNodeExists)
	}())
	check("create: under a missing parent -> ErrNoNode", func() error {
		_, err := s1.Create(base+"/missing/child", nil, 0, worldAll)
		return wantErr(err, zk.ErrNoNode)
	}())
	check("get: a missing node -> ErrNoNode", func() error {
		_, _, err := s1.Get(base + "/missing")
		return wantErr(err, zk.ErrNoNode)
	}())
	check("exists: false for a missing node, true with Stat for an existing one", func() error {
		ok, _, err := s1.Exists(base + "/missing")
		if err != nil || ok {
			return fmt.Errorf("missing: exists=%v err=%v", ok, err)
		}
		if err := s2.catchUp(a); err != nil {
			return err
		}
		ok, st, err := s2.Exists(a)
		if err != nil || !ok || st.DataLength != 3 {
			return fmt.Errorf("existing: exists=%v err=%v stat=%+v", ok, err, st)
		}
		return nil
	}())
	check("set: with the current version -> version 1, new mzxid", func() error {
		st, err := s1.Set(a, []byte("two"), 0)
		if err != nil {
			return err
		}
		if st.Version != 1 || st.Mzxid <= st.Czxid || st.DataLength != 3 {
			return fmt.Errorf("stat %+v", *st)
		}
		return nil
	}())
	check("set: with a stale version -> ErrBadVersion, data unchanged", func() error {
		_, err := s2.Set(a, []byte("stale"), 0)
		if e := wantErr(err, zk.ErrBadVersion); e != nil {
			return e
		}
		data, _, err := s2.Get(a)
		if err != nil || string(data) != "two" {
			return fmt.Errorf("data %q err %v", data, err)
		}
		return nil
	}())
	check("set: version -1 matches any version", func() error {
		st, err := s2.Set(a, []byte("three!"), -1)
		if err != nil {
			return err
		}
		if st.Version != 2 || st.DataLength != 6 {
			return fmt.Errorf("stat %+v", *st)
		}
		if err := s1.catchUp(a); err != nil {
			return err
		}
		data, _, err := s1.Get(a)
		if err != nil || string(data) != "three!" {
			return fmt.Errorf("s1 reads %q err %v", data, err)
		}
		return nil
	}())
	check("set: a missing node -> ErrNoNode", func() error {
		_, err := s1.Set(base+"/missing", []byte("x"), -1)
		return wantErr(err, zk.ErrNoNode)
	}())
	check("delete: with a stale version -> ErrBadVersion", func() error {
		return wantErr(s1.Delete(a, 1), zk.ErrBadVersion)
	}())
	check("delete: a node with children -> ErrNotEmpty", func() error {
		return wantErr(s1.Delete(base, -1), zk.ErrNotEmpty)
	}())
	check("delete: a missing node -> ErrNoNode", func() error {
		return wantErr(s1.Delete(base+"/missing", -1), zk.ErrNoNode)
	}())
	check("delete: with the current version; the other session sees it gone", func() error {
		if err := s1.Delete(a, 2); err != nil {
			return err
		}
		if err := s2.catchUp(a); err != nil {
			return err
		}
		ok, _, err := s2.Exists(a)
		if err != nil || ok {
			return fmt.Errorf("exists=%v err=%v", ok, err)
		}
		return nil
	}())
	check("children: sorted names; parent Stat counts them", func() error {
		for _, n := range []string{"c", "b"} {
			if _, err := s1.Create(base+"/"+n, nil, 0, worldAll); err != nil {
				return err
			}
		}
		if err := s2.catchUp(base); err != nil {
			return err
		}
		kids, st, err := s2.Children(base)
		if err != nil {
			return err
		}
		sort.Strings(kids)
		if !reflect.DeepEqual(kids, []string{"b", "c"}) {
			return fmt.Errorf("children %q", kids)
		}
		// a created and deleted, c and b created: four child changes.
		if st.NumChildren != 2 || st.Cversion != 4 {
			return fmt.Errorf("parent stat %+v", *st)
		}
		return nil
	}())
	check("create: nil data reads back empty", func() error {
		data, st, err := s1.Get(base + "/b")
		if err != nil {
			return err
		}
		if len(data) != 0 || st.DataLength != 0 {
			return fmt.Errorf("data %q stat %+v", data, *st)
		}
		return nil
	}())
	check("sync: returns the path", func() error {
		p, err := s1.Sync(base)
		if err != nil {
			return err
		}
		if p != base {
			return fmt.Errorf("path %q", p)
		}
		return nil
	}())
}

var seqName = regexp.MustCompile(`^(n|p)-(\d{10})$`)

func ephemeralSequential(hosts string, s2 *client, base string) {
	dir := base + "/eph"
	if !check("ephemeral: parent created", func() error {
		_, err := s2.Create(dir, nil, 0, worldAll)
		return err
	}()) {
		return
	}
	s3, err := dial("s3", hosts, 10*time.Second)
	if !check("ephemeral: a third session", err) {
		return
	}
	var created []string
	check("ephemeral-sequential: names are prefix + 10 digits, 0, 1, 2", func() error {
		for i := 0; i < 3; i++ {
			p, err := s3.Create(dir+"/n-", []byte{byte('0' + i)}, zk.FlagEphemeral|zk.FlagSequence, worldAll)
			if err != nil {
				s3.Close()
				return err
			}
			created = append(created, p)
		}
		for i, p := range created {
			want := fmt.Sprintf("%s/n-%010d", dir, i)
			if p != want {
				return fmt.Errorf("created %q, want %q", created, want)
			}
		}
		return nil
	}())
	check("sequential: the counter is the parent's, shared by every prefix", func() error {
		p, err := s3.Create(dir+"/p-", nil, zk.FlagSequence, worldAll)
		if err != nil {
			return err
		}
		if want := dir + "/p-0000000003"; p != want {
			return fmt.Errorf("created %q, want %q", p, want)
		}
		return nil
	}())
	check("ephemeral: Stat.EphemeralOwner is the creator's session", func() error {
		if len(created) == 0 {
			return fmt.Errorf("nothing created")
		}
		if err := s2.catchUp(created[0]); err != nil {
			return err
		}
		_, st, err := s2.Get(created[0])
		if err != nil {
			return err
		}
		if st.EphemeralOwner != s3.SessionID() {
			return fmt.Errorf("owner %#x, want %#x", st.EphemeralOwner, s3.SessionID())
		}
		return nil
	}())
	check("ephemeral: may not have children -> ErrNoChildrenForEphemerals", func() error {
		if len(created) == 0 {
			return fmt.Errorf("nothing created")
		}
		_, err := s3.Create(created[0]+"/kid", nil, 0, worldAll)
		return wantErr(err, zk.ErrNoChildrenForEphemerals)
	}())
	check("ephemeral: protected ephemeral-sequential name", func() error {
		p, err := s3.CreateProtectedEphemeralSequential(dir+"/lock-", nil, worldAll)
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(dir) + `/_c_[0-9a-f]{32}-lock-0000000004$`).MatchString(p) {
			return fmt.Errorf("created %q", p)
		}
		return nil
	}())
	var watch <-chan zk.Event
	check("ephemeral: the second session lists them in order", func() error {
		if err := s2.catchUp(dir); err != nil {
			return err
		}
		kids, _, ch, err := s2.ChildrenW(dir)
		if err != nil {
			return err
		}
		watch = ch
		var seq []string
		for _, k := range kids {
			if m := seqName.FindStringSubmatch(k); m != nil {
				seq = append(seq, k)
			}
		}
		sort.Slice(seq, func(i, j int) bool { return seq[i][2:] < seq[j][2:] })
		want := []string{"n-0000000000", "n-0000000001", "n-0000000002", "p-0000000003"}
		if !reflect.DeepEqual(seq, want) || len(kids) != 5 {
			return fmt.Errorf("children %q", kids)
		}
		return nil
	}())
	s3.Close()
	check("ephemeral: they vanish when their session closes (child watch fires)", func() error {
		if err := waitEvent(watch, zk.EventNodeChildrenChanged, dir); err != nil {
			return err
		}
		kids, _, err := s2.Children(dir)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(kids, []string{"p-0000000003"}) {
			return fmt.Errorf("children after close %q", kids)
		}
		for _, p := range created {
			if ok, _, err := s2.Exists(p); err != nil || ok {
				return fmt.Errorf("%s: exists=%v err=%v", p, ok, err)
			}
		}
		return nil
	}())
}

func watches(s1, s2 *client, base string) {
	node := base + "/w"
	if !check("watch: node created", func() error {
		_, err := s1.Create(node, []byte("w0"), 0, worldAll)
		return err
	}()) {
		return
	}
	check("data watch: fires once with EventNodeDataChanged", func() error {
		mark := s1.ev.mark()
		_, _, ch, err := s1.GetW(node)
		if err != nil {
			return err
		}
		if _, err := s2.Set(node, []byte("w1"), -1); err != nil {
			return err
		}
		if err := waitEvent(ch, zk.EventNodeDataChanged, node); err != nil {
			return err
		}
		if _, err := s2.Set(node, []byte("w2"), -1); err != nil {
			return err
		}
		// An event the second set caused would reach s1 before this reply.
		if _, _, err := s1.Get(node); err != nil {
			return err
		}
		if n := s1.ev.count(mark, isAnyNodeEvent(node)); n != 1 {
			return fmt.Errorf("%d events on %s, want 1", n, node)
		}
		return nil
	}())
	check("child watch: fires once with EventNodeChildrenChanged, not on the parent's data", func() error {
		mark := s1.ev.mark()
		_, _, ch, err := s1.ChildrenW(node)
		if err != nil {
			return err
		}
		if _, err := s2.Set(node, []byte("w3"), -1); err != nil {
			return err
		}
		if _, err := s2.Create(node+"/k1", nil, 0, worldAll); err != nil {
			return err
		}
		if err := waitEvent(ch, zk.EventNodeChildrenChanged, node); err != nil {
			return err
		}
		if _, err := s2.Create(node+"/k2", nil, 0, worldAll); err != nil {
			return err
		}
		if _, _, err := s1.Get(node); err != nil {
			return err
		}
		if n := s1.ev.count(mark, isAnyNodeEvent(node)); n != 1 {
			return fmt.Errorf("%d events on %s, want 1", n, node)
		}
		return nil
	}())
	check("data watch: a delete fires EventNodeDeleted", func() error {
		k := node + "/k1"
		_, _, ch, err := s1.GetW(k)
		if err != nil {
			return err
		}
		if err := s2.Delete(k, -1); err != nil {
			return err
		}
		return waitEvent(ch, zk.EventNodeDeleted, k)
	}())
	check("exists watch: on a missing node fires once, on its creation", func() error {
		p := node + "/later"
		mark := s1.ev.mark()
		ok, _, ch, err := s1.ExistsW(p)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%s exists already", p)
		}
		if _, err := s2.Create(p, []byte("x"), 0, worldAll); err != nil {
			return err
		}
		if err := waitEvent(ch, zk.EventNodeCreated, p); err != nil {
			return err
		}
		if _, err := s2.Set(p, []byte("y"), -1); err != nil {
			return err
		}
		if _, _, err := s1.Get(p); err != nil {
			return err
		}
		if n := s1.ev.count(mark, isAnyNodeEvent(p)); n != 1 {
			return fmt.Errorf("%d events on %s, want 1", n, p)
		}
		return nil
	}())
}

func multi(s1 *client, base string) {
	m := base + "/m"
	check("multi: create, create child, set, check in one transaction", func() error {
		res, err := s1.Multi(
			&zk.CreateRequest{Path: m, Data: []byte("m0"), Acl: worldAll},
			&zk.CreateRequest{Path: m + "/c", Data: nil, Acl: worldAll},
			&zk.SetDataRequest{Path: m, Data: []byte("m1"), Version: 0},
			&zk.CheckVersionRequest{Path: m, Version: 1},
		)
		if err != nil {
			return err
		}
		if len(res) != 4 || res[0].String != m || res[1].String != m+"/c" ||
			res[2].Stat == nil || res[2].Stat.Version != 1 {
			return fmt.Errorf("results %s", describe(res))
		}
		for i, r := range res {
			if r.Error != nil {
				return fmt.Errorf("op %d: %v", i, r.Error)
			}
		}
		data, st, err := s1.Get(m)
		if err != nil || string(data) != "m1" || st.Version != 1 || st.NumChildren != 1 {
			return fmt.Errorf("after: data %q stat %+v err %v", data, st, err)
		}
		return nil
	}())
	check("multi: a failing op fails it all, per-op errors, nothing applied", func() error {
		x := base + "/mx"
		res, err := s1.Multi(
			&zk.CreateRequest{Path: x, Data: []byte("x"), Acl: worldAll},
			&zk.SetDataRequest{Path: m, Data: []byte("lost"), Version: -1},
			&zk.DeleteRequest{Path: base + "/missing", Version: -1},
			&zk.CreateRequest{Path: x + "/y", Data: nil, Acl: worldAll},
		)
		if e := wantErr(err, zk.ErrNoNode); e != nil {
			return fmt.Errorf("multi: %v (results %s)", e, describe(res))
		}
		// ZooKeeper: ops before the failing one say OK, the failing one its
		// error, the ones after it "runtime inconsistency" (the library maps
		// codes it does not know to ErrUnknown).
		if len(res) != 4 || res[0].Error != nil || res[1].Error != nil ||
			res[2].Error != zk.ErrNoNode || res[3].Error != zk.ErrUnknown {
			return fmt.Errorf("results %s", describe(res))
		}
		if ok, _, err := s1.Exists(x); err != nil || ok {
			return fmt.Errorf("%s: exists=%v err=%v", x, ok, err)
		}
		data, st, err := s1.Get(m)
		if err != nil || string(data) != "m1" || st.Version != 1 {
			return fmt.Errorf("%s: data %q stat %+v err %v", m, data, st, err)
		}
		return nil
	}())
	check("multi: a failing version check -> ErrBadVersion, nothing applied", func() error {
		res, err := s1.Multi(
			&zk.SetDataRequest{Path: m, Data: []byte("lost"), Version: -1},
			&zk.CheckVersionRequest{Path: m, Version: 99},
		)
		if e := wantErr(err, zk.ErrBadVersion); e != nil {
			return fmt.Errorf("multi: %v (results %s)", e, describe(res))
		}
		data, _, err := s1.Get(m)
		if err != nil || string(data) != "m1" {
			return fmt.Errorf("data %q err %v", data, err)
		}
		return nil
	}())
}

func describe(res []zk.MultiResponse) string {
	var b strings.Builder
	b.WriteString("[")
	for i, r := range res {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{%q err=%v", r.String, r.Error)
		if r.Stat != nil {
			fmt.Fprintf(&b, " version=%d", r.Stat.Version)
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	return b.String()
}

// digestID is "user:base64(sha1(user:password))", computed here rather than
// with the library's DigestACL so that both are checked.
func digestID(user, password string) string {
	sum := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

func acls(hosts string, s1, s2 *client, base string) {
	s4, err := dial("s4", hosts, 10*time.Second)
	if !check("acl: a session for digest auth", err) {
		return
	}
	defer s4.Close()
	secret := base + "/secret"
	check("acl: AddAuth digest", s4.AddAuth("digest", []byte("gouser:gopass")))
	check("acl: create with a digest ACL; the owner reads it and its ACL", func() error {
		if _, err := s4.Create(secret, []byte("s"), 0, zk.DigestACL(zk.PermAll, "gouser", "gopass")); err != nil {
			return err
		}
		data, _, err := s4.Get(secret)
		if err != nil || !bytes.Equal(data, []byte("s")) {
			return fmt.Errorf("get: data %q err %v", data, err)
		}
		acl, _, err := s4.GetACL(secret)
		if err != nil {
			return err
		}
		want := []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: digestID("gouser", "gopass")}}
		if !reflect.DeepEqual(acl, want) {
			return fmt.Errorf("acl %+v, want %+v", acl, want)
		}
		return nil
	}())
	check("acl: an unauthenticated session gets ErrNoAuth (get, set, create child)", func() error {
		if err := s2.catchUp(secret); err != nil {
			return err
		}
		if _, _, err := s2.Get(secret); wantErr(err, zk.ErrNoAuth) != nil {
			return fmt.Errorf("get: %v", wantErr(err, zk.ErrNoAuth))
		}
		if _, err := s2.Set(secret, []byte("x"), -1); wantErr(err, zk.ErrNoAuth) != nil {
			return fmt.Errorf("set: %v", wantErr(err, zk.ErrNoAuth))
		}
		if _, err := s2.Create(secret+"/kid", nil, 0, worldAll); wantErr(err, zk.ErrNoAuth) != nil {
			return fmt.Errorf("create: %v", wantErr(err, zk.ErrNoAuth))
		}
		return nil
	}())
	check("acl: a wrong password is accepted by AddAuth but grants nothing", func() error {
		s5, err := dial("s5", hosts, 10*time.Second)
		if err != nil {
			return err
		}
		defer s5.Close()
		if err := s5.AddAuth("digest", []byte("gouser:wrong")); err != nil {
			return fmt.Errorf("addauth: %v", err)
		}
		_, _, err = s5.Get(secret)
		return wantErr(err, zk.ErrNoAuth)
	}())
	check("acl: the auth scheme becomes the session's digest id", func() error {
		p := base + "/authacl"
		if _, err := s4.Create(p, []byte("a"), 0, zk.AuthACL(zk.PermRead|zk.PermAdmin)); err != nil {
			return err
		}
		acl, _, err := s4.GetACL(p)
		if err != nil {
			return err
		}
		want := []zk.ACL{{Perms: zk.PermRead | zk.PermAdmin, Scheme: "digest", ID: digestID("gouser", "gopass")}}
		if !reflect.DeepEqual(acl, want) {
			return fmt.Errorf("acl %+v, want %+v", acl, want)
		}
		if _, err := s4.Set(p, []byte("b"), -1); wantErr(err, zk.ErrNoAuth) != nil {
			return fmt.Errorf("set without WRITE: %v", wantErr(err, zk.ErrNoAuth))
		}
		return nil
	}())
	check("acl: getACL without ADMIN shows the digest as user:x", func() error {
		p := base + "/readonly"
		if _, err := s4.Create(p, nil, 0, zk.AuthACL(zk.PermRead)); err != nil {
			return err
		}
		acl, _, err := s4.GetACL(p)
		if err != nil {
			return err
		}
		want := []zk.ACL{{Perms: zk.PermRead, Scheme: "digest", ID: "gouser:x"}}
		if !reflect.DeepEqual(acl, want) {
			return fmt.Errorf("acl %+v, want %+v", acl, want)
		}
		return nil
	}())
	check("acl: getACL needs READ or ADMIN -> ErrNoAuth", func() error {
		if err := s1.catchUp(base + "/authacl"); err != nil {
			return err
		}
		_, _, err := s1.GetACL(base + "/authacl")
		return wantErr(err, zk.ErrNoAuth)
	}())
	check("acl: the auth scheme without any auth -> ErrInvalidACL", func() error {
		_, err := s2.Create(base+"/noauth", nil, 0, zk.AuthACL(zk.PermAll))
		return wantErr(err, zk.ErrInvalidACL)
	}())
	check("acl: delete is checked on the parent, so anyone may delete it", func() error {
		if err := s2.Delete(secret, -1); err != nil {
			return err
		}
		if err := s4.catchUp(secret); err != nil {
			return err
		}
		ok, _, err := s4.Exists(secret)
		if err != nil || ok {
			return fmt.Errorf("exists=%v err=%v", ok, err)
		}
		return nil
	}())
}

// cleanup deletes everything under base, deepest first (bounded by the tree).
func cleanup(s *client, base string) {
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%s: too deep", p)
		}
		kids, _, err := s.Children(p)
		if err == zk.ErrNoAuth {
			kids = nil // a leaf this session may not read, but may delete
		} else if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(p+"/"+k, depth+1); err != nil {
				return err
			}
		}
		return s.Delete(p, -1)
	}
	if err := s.catchUp(base); err != nil {
		check("cleanup: the suite's nodes deleted", err)
		return
	}
	check("cleanup: the suite's nodes deleted", walk(base, 0))
}
