package crdt

import (
	"fmt"
	"testing"
	"time"
)

const benchOps = 100000

type benchLog struct {
	l     *Log
	raws  [][]byte
	users []*actor
	paths []string
	took  time.Duration // time to append all ops
}

var bench100k *benchLog

// buildBenchLog appends n ops to a fresh log the way a busy folder grows:
// members join, folders are created, roles granted and changed, files locked
// and released. Every op goes through Append (sign, check, fast path).
func buildBenchLog(b *testing.B, n int) *benchLog {
	b.Helper()
	f := newActor(b, "founder")
	start := time.Now()
	l := newTestFolder(b, f)
	bl := &benchLog{l: l}
	for i := 0; i < 20; i++ {
		u := newActor(b, fmt.Sprintf("u%d", i))
		must(b, l, f, Grant{Principal: UserPrincipal(u.uid), Role: RoleViewer + Role(i%4)})
		must(b, l, u, AddDevice{Cert: u.cert})
		bl.users = append(bl.users, u)
	}
	locker := newActor(b, "locker")
	must(b, l, f, Grant{Principal: UserPrincipal(locker.uid), Role: RoleEditor})
	must(b, l, locker, AddDevice{Cert: locker.cert})
	nodes := []NodeID{RootNode}
	bl.paths = []string{""}
	for l.Len() < n {
		i := l.Len()
		switch i % 10 {
		case 0:
			parent := i / 10 % len(nodes)
			name := fmt.Sprintf("d%d", i)
			nodes = append(nodes, mkdir(b, l, f, nodes[parent], name))
			p := name
			if bl.paths[parent] != "" {
				p = bl.paths[parent] + "/" + name
			}
			bl.paths = append(bl.paths, p)
		case 1, 2, 3:
			u := bl.users[i%len(bl.users)]
			must(b, l, f, Grant{Principal: UserPrincipal(u.uid), Node: nodes[i%len(nodes)], Role: Role(2 + i%3)})
		case 4:
			u := bl.users[i%len(bl.users)]
			if l.State().principalRole(UserPrincipal(u.uid), nodes[(i-3)%len(nodes)]) != RoleNone {
				must(b, l, f, Revoke{Principal: UserPrincipal(u.uid), Node: nodes[(i-3)%len(nodes)]})
			} else {
				must(b, l, f, CreateFolder{Parent: nodes[i%len(nodes)], Name: fmt.Sprintf("e%d", i)})
			}
		default:
			u := locker
			req := must(b, l, u, LockRequest{Path: fmt.Sprintf("f%d", i), LeaseSecs: 60})
			must(b, l, u, LockRelease{Request: RefOf(req.ID)})
		}
	}
	bl.took = time.Since(start)
	bl.raws = l.OpsSince(nil)
	if l.Rounds() != 0 {
		b.Fatalf("linear appends left the fast path (%d rounds)", l.Rounds())
	}
	return bl
}

func getBench100k(b *testing.B) *benchLog {
	if bench100k == nil {
		bench100k = buildBenchLog(b, benchOps)
	}
	return bench100k
}

// BenchmarkAppendMerge100k appends 100,000 ops on one replica and merges
// them into a fresh one. Reported against the crypto floor measured in the
// same run (one Ed25519 sign + one verify of an op of the same size): the
// ratio says how much the log costs on top of the signatures it must make
// and check.
func BenchmarkAppendMerge100k(b *testing.B) {
	bl := getBench100k(b)
	total := 0
	for _, r := range bl.raws {
		total += len(r)
	}
	var mergeTook time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := New(bl.raws[0], NewMemStore())
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Merge(bl.raws[1:])
		if err != nil || res.Added != len(bl.raws)-1 {
			b.Fatalf("merge: %v %+v", err, res.Rejected)
		}
		mergeTook = time.Since(start)
		if string(r.Digest()) != string(bl.l.Digest()) {
			b.Fatal("replica differs")
		}
	}
	// Crypto floor: sign and verify one op-sized message, many times.
	f := newActor(b, "floor")
	msg := bl.raws[len(bl.raws)/2]
	const floorN = 2000
	start := time.Now()
	for i := 0; i < floorN; i++ {
		sig, _ := f.dev.Sign(msg)
		if ok, _ := f.dev.GetPublic().Verify(msg, sig); !ok {
			b.Fatal("verify")
		}
	}
	floor := time.Since(start) / floorN
	n := float64(len(bl.raws))
	b.ReportMetric(n/bl.took.Seconds(), "append-ops/s")
	b.ReportMetric(n/mergeTook.Seconds(), "merge-ops/s")
	b.ReportMetric(float64(total)/n, "bytes/op")
	b.ReportMetric(float64(bl.took+mergeTook)/n/float64(floor), "x-crypto-floor")
}

// BenchmarkCan asks Can against the 100,000-op state, reported as a ratio to
// the same queries against a 200-op state measured in the same run: Can
// answers from indexes, so the ratio stays near 1 (no log scan).
func BenchmarkCan(b *testing.B) {
	big := getBench100k(b)
	small := buildBenchLog(b, 200)
	query := func(bl *benchLog, i int) bool {
		u := bl.users[i%len(bl.users)]
		p := bl.paths[i%len(bl.paths)] + "/file.txt"
		return bl.l.Can(u.uid, ActionWrite, p)
	}
	const smallN = 200000
	start := time.Now()
	for i := 0; i < smallN; i++ {
		query(small, i)
	}
	smallPer := time.Since(start) / smallN
	i := 0
	for b.Loop() {
		query(big, i)
		i++
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(smallPer), "x-vs-200-ops")
}
