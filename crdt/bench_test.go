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

// BenchmarkConcurrent3 runs three replicas that each append 5 ops and then
// exchange what they made, until 1,500 ops exist: every op is concurrent with
// others, so evaluation takes the slow path (from the latest cut). Reported
// as a ratio to the same number of ops appended linearly on one replica and
// merged into the other two, measured in the same run (same signing and
// verifying work).
func BenchmarkConcurrent3(b *testing.B) {
	const total, perRound = 1500, 5
	f := newActor(b, "founder")
	users := []*actor{f, newActor(b, "u1"), newActor(b, "u2")}
	setup := func() []*Log {
		l := newTestFolder(b, f)
		for _, u := range users[1:] {
			must(b, l, f, Grant{Principal: UserPrincipal(u.uid), Role: RoleManager})
			must(b, l, u, AddDevice{Cert: u.cert})
		}
		return []*Log{l, fork(b, l), fork(b, l)}
	}
	op := func(l *Log, u *actor, i int) {
		var body Body = CreateFolder{Name: fmt.Sprintf("n%d", i%50)}
		if i%3 == 0 {
			body = Grant{Principal: UserPrincipal(newActorCached(b, i%40).uid), Role: RoleViewer + Role(i%3)}
		}
		must(b, l, u, body)
	}
	// Baseline: linear.
	start := time.Now()
	reps := setup()
	for i := 0; reps[0].Len() < total; i++ {
		op(reps[0], users[0], i)
	}
	for _, r := range reps[1:] {
		if _, err := r.Merge(reps[0].OpsSince(r.Heads())); err != nil {
			b.Fatal(err)
		}
	}
	linear := time.Since(start)
	var conc time.Duration
	for b.Loop() {
		start := time.Now()
		reps := setup()
		for i := 0; reps[0].Len() < total; i++ {
			for k, r := range reps {
				for j := 0; j < perRound; j++ {
					op(r, users[k], i*perRound+j)
				}
			}
			for k, r := range reps {
				for m, s := range reps {
					if k != m {
						if _, err := s.Merge(r.OpsSince(s.Heads())); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		}
		conc = time.Since(start)
		if string(reps[0].Digest()) != string(reps[1].Digest()) {
			b.Fatal("diverged")
		}
	}
	b.ReportMetric(float64(conc)/total, "ns/concurrent-op")
	b.ReportMetric(float64(conc)/float64(linear), "x-vs-linear")
}

var actorCache = map[int]*actor{}

func newActorCached(tb testing.TB, i int) *actor {
	if a, ok := actorCache[i]; ok {
		return a
	}
	a := newActor(tb, fmt.Sprintf("c%d", i))
	actorCache[i] = a
	return a
}
