#!/usr/bin/env bash
# The network-namespace test of meshfold's WAN paths (issue 7): real meshfold
# processes in isolated network namespaces, a relay on a "public" segment, two
# devices behind their own NAT routers, and a LAN pair that only has mDNS.
#
# Usage (root, Linux, with ip, iptables and jq):
#   tests/netns/netns.sh [all]        checks 1-5 and the throughput figures
#   tests/netns/netns.sh lan          check 1: LAN pair by mDNS alone
#   tests/netns/netns.sh nat          check 2a: relay, hole punch to direct, sync
#   tests/netns/netns.sh blocked      check 2b: hole punching blocked, sync over the relay
#   tests/netns/netns.sh limits       check 2c: a file 4x a relay's circuit limit still syncs
#   tests/netns/netns.sh offline      check 3: catch up from the relay replica
#   tests/netns/netns.sh locks        check 4: lock with the relay witness up (granted) and down (pending)
#   tests/netns/netns.sh gateway      checks 4 and 5: then share links through the relay's HTTP gateway
#   tests/netns/netns.sh autonat      time to a relay slot when AutoNAT decides (no --relay-always)
#   tests/netns/netns.sh loop [N]     hole-punch success fraction over N runs (default 20)
# Environment:
#   MESHFOLD_BIN    a built meshfold binary (default: built once into the work dir)
#   NETNS_REQUIRE=1 a skip (not root, no namespaces) is a failure
#   NETNS_KEEP=1    keep the work dir (logs) after the run
#   THROUGHPUT_MIB  size of the throughput file (default 32)
#   NETNS_LOG_LEVEL log level of the daemons (default info)
#
# Topology (every namespace is created here; none has a link to the host's
# network, which is checked before anything runs):
#   pub    bridge "internet" 172.32.0.0/24 (not RFC 1918: libp2p only hole
#          punches between addresses it considers public, LIBP2P-NOTES.md §5)
#   relay  172.32.0.1                       meshfold relay
#   nat1   wan 172.32.0.11, lan 10.1.0.1    masquerade, no unsolicited inbound
#   nat2   wan 172.32.0.12, lan 10.2.0.1
#   h1     10.1.0.2 behind nat1             device
#   h2     10.2.0.2 behind nat2             device
#   lan    bridge 192.168.77.0/24; l1 .2, l2 .3: the mDNS pair
#
# Checks 4 and 5 use a second relay, "relaywit" (172.32.0.1 port 22300,
# gateway on :8080, metrics on :9100), linked as a device of h1's user: it is
# the pair's relay, a replica of their folder, the lock witness and the link
# gateway.
set -euo pipefail

MODE=${1:-all}
LOOP_N=${2:-20}
THROUGHPUT_MIB=${THROUGHPUT_MIB:-32}

skip() {
  echo "netns: SKIP: $*"
  if [ "${NETNS_REQUIRE:-}" = 1 ]; then exit 1; fi
  exit 0
}
fail() {
  echo "netns: FAIL: $*" >&2
  exit 1
}
say() { echo "netns: $*"; }

[ "$(uname -s)" = Linux ] || skip "not Linux"
[ "$(id -u)" = 0 ] || skip "not root (network namespaces need CAP_SYS_ADMIN)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v iptables >/dev/null || fail "iptables is not installed (.ci/netns installs it)"
command -v jq >/dev/null || fail "jq is not installed (.ci/netns installs it)"

P="mf$$"                       # namespace prefix: unique to this run
probe="${P}probe"
ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces"
ip netns del "$probe"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/meshfold-netns.XXXXXX)
declare -A PIDS=()
NSLIST=()

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    for name in "${!PIDS[@]}"; do
      echo "--- status of $name"
      status "$name" 2>&1 | jq -c '{addrs, connections}' 2>&1 || true
    done
  fi
  for name in "${!PIDS[@]}"; do kill "${PIDS[$name]}" 2>/dev/null || true; done
  for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
  # Processes left in our namespaces were started by this run (a subshell's).
  for ns in "${NSLIST[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  for ns in "${NSLIST[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    say "logs of the failed run:"
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f (last 15 lines)"; tail -n 15 "$f"; }; done
  fi
  if [ "${NETNS_KEEP:-}" = 1 ] || [ $rc -ne 0 ]; then say "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN=${MESHFOLD_BIN:-}
if [ -z "$BIN" ]; then
  say "building meshfold"
  (cd "$ROOT" && go build -o "$WORK/meshfold" ./cmd/meshfold)
  BIN="$WORK/meshfold"
fi

now_ms() { date +%s%3N; }

# wait_until DESC SECONDS CMD...: polls CMD until it succeeds or the deadline passes.
wait_until() {
  local desc=$1 secs=$2
  shift 2
  local end=$(($(now_ms) + secs * 1000))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$(now_ms)" -gt "$end" ]; then fail "timed out after ${secs}s: $desc"; fi
    sleep 0.1 # polling interval of a condition with a deadline
  done
}

# ---------------------------------------------------------------- topology
mkns() {
  ip netns add "$1"
  NSLIST+=("$1")
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
}
# veth NS1 IF1 NS2 IF2: a cable between two of our namespaces (never the host's).
veth() {
  ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}
bridge() {
  ip -n "$1" link add br0 type bridge
  ip -n "$1" link set br0 up
}

setup() {
  mkns "${P}pub"; bridge "${P}pub"
  mkns "${P}relay"; mkns "${P}nat1"; mkns "${P}nat2"; mkns "${P}h1"; mkns "${P}h2"
  veth "${P}pub" r0 "${P}relay" eth0
  veth "${P}pub" n1 "${P}nat1" wan
  veth "${P}pub" n2 "${P}nat2" wan
  for i in r0 n1 n2; do ip -n "${P}pub" link set "$i" master br0; done
  ip -n "${P}relay" addr add 172.32.0.1/24 dev eth0
  for i in 1 2; do
    local nat="${P}nat$i" h="${P}h$i"
    ip -n "$nat" addr add "172.32.0.1$i/24" dev wan
    veth "$nat" lan "$h" eth0
    ip -n "$nat" addr add "10.$i.0.1/24" dev lan
    ip -n "$h" addr add "10.$i.0.2/24" dev eth0
    ip -n "$h" route add default via "10.$i.0.1"
    ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$nat" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
    ip netns exec "$nat" iptables -P FORWARD DROP
    ip netns exec "$nat" iptables -A FORWARD -i lan -o wan -j ACCEPT
    ip netns exec "$nat" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    ip netns exec "$nat" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    ip netns exec "$nat" iptables -A INPUT -i wan -j DROP
  done
  mkns "${P}lan"; bridge "${P}lan"
  for i in 1 2; do
    mkns "${P}l$i"
    veth "${P}lan" "p$i" "${P}l$i" eth0
    ip -n "${P}lan" link set "p$i" master br0
    ip -n "${P}l$i" addr add "192.168.77.$((i + 1))/24" dev eth0
    ip -n "${P}l$i" route add 224.0.0.0/4 dev eth0
  done
}

# check_isolated: no namespace of this test has a link to the host network.
# Every veth end in our namespaces must have its peer in one of our
# namespaces, and the host's namespace must hold no end of our cables.
check_isolated() {
  local ns line
  for ns in "${NSLIST[@]}"; do
    while IFS= read -r line; do
      case "$line" in
        *" lo: "*|*" br0: "*) ;;
        *"link/ether"*"link-netns ${P}"*) ;;
        *) fail "namespace $ns has a link that does not lead to another test namespace: $line" ;;
      esac
    done < <(ip -n "$ns" -o link show)
  done
  if ip -o link show | grep -q "link-netns ${P}"; then
    fail "the host's namespace holds an end of a test cable"
  fi
  # And nothing routes around the NATs: h1 cannot open a connection to h2's
  # private or NAT address, and it does reach the relay.
  if reaches "${P}h1" 10.2.0.2; then fail "h1 reaches h2's private address: the NATs leak"; fi
  if reaches "${P}h1" 172.32.0.12; then fail "h1 reaches nat2's WAN side unsolicited"; fi
  reaches "${P}h1" 172.32.0.1 || fail "h1 cannot reach the relay through its NAT"
  say "isolation checked: ${#NSLIST[@]} namespaces, no link to the host network"
}

# reaches NS IP: a TCP connection attempt from NS to IP port 9 gets an answer
# (accepted or refused) within 2 s; silence or "unreachable" means no.
reaches() {
  local out
  out=$(ip netns exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
  case "$out" in *"refused"*) return 0 ;; esac
  return 1
}

# block_punching: drop UDP and every TCP connection but the relay's at both NATs.
block_punching() {
  for i in 1 2; do
    ip netns exec "${P}nat$i" iptables -I FORWARD 1 -i lan -o wan -p udp -j DROP
    ip netns exec "${P}nat$i" iptables -I FORWARD 1 -i lan -o wan -p tcp ! -d 172.32.0.1 -j DROP
  done
}
unblock_punching() {
  for i in 1 2; do
    ip netns exec "${P}nat$i" iptables -D FORWARD -i lan -o wan -p udp -j DROP
    ip netns exec "${P}nat$i" iptables -D FORWARD -i lan -o wan -p tcp ! -d 172.32.0.1 -j DROP
  done
}

# ---------------------------------------------------------------- daemons
# start NAME NS ARGS...: runs `meshfold run` (or relay, when NAME is relay*)
# with home $WORK/NAME in namespace NS and waits for its control API.
start() {
  local name=$1 ns=$2
  shift 2
  local cmd=run
  case "$name" in relay*) cmd=relay ;; esac
  rm -f "$WORK/$name/api.json"
  ip netns exec "$ns" "$BIN" "$cmd" --home "$WORK/$name" --log-format json --log-level "${NETNS_LOG_LEVEL:-info}" "$@" \
    >>"$WORK/$name.out" 2>>"$WORK/$name.log" &
  PIDS[$name]=$!
  NSOF[$name]=$ns
  wait_until "$name's control API" 30 test -s "$WORK/$name/api.json"
}
declare -A NSOF=()
stop() {
  local name=$1
  kill "${PIDS[$name]}" 2>/dev/null || true
  wait "${PIDS[$name]}" 2>/dev/null || true
  unset "PIDS[$name]"
}
cli() { # cli NAME ARGS...: meshfold ARGS in NAME's namespace against NAME's home
  local name=$1
  shift
  ip netns exec "${NSOF[$name]}" "$BIN" "$@" --home "$WORK/$name"
}
status() { cli "$1" status --json; }
device_id() { status "$1" | jq -r .device; }
connected_to() { status "$1" | jq -e --arg p "$2" '.connected | index($p) != null'; }
direct_to() { status "$1" | jq -e --arg p "$2" '[.connections[] | select(.peer == $p and (.relayed | not))] | length > 0'; }
relayed_to() { status "$1" | jq -e --arg p "$2" '[.connections[] | select(.peer == $p and .relayed)] | length > 0'; }
has_slot() { status "$1" | jq -e '[.addrs[] | select(contains("/p2p-circuit"))] | length > 0'; }
same_file() { [ -f "$2" ] && [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ]; }

RELAY_ID=""
start_relay() {
  start relay "${P}relay" --announce /ip4/172.32.0.1/tcp/22100 --announce /ip4/172.32.0.1/udp/22100/quic-v1
  RELAY_ID=$(device_id relay)
}
# relay_flags [ID PORT]: the flags of a device behind a NAT using that relay
# (default: the main relay).
relay_flags() {
  local id=${1:-$RELAY_ID} port=${2:-22100}
  echo --relay "/ip4/172.32.0.1/udp/$port/quic-v1/p2p/$id" --relay "/ip4/172.32.0.1/tcp/$port/p2p/$id" --dht --no-mdns
}

# share NAME DIR: makes DIR a folder on NAME, prints its ID.
share() { cli "$1" folder add "$2" --json | jq -r .id; }
invite() { cli "$1" invite "$2" --json | jq -r .key; }
join() { cli "$1" join "$2" "$3" --json | jq -r .id; }

write_file() { # write_file PATH MIB: random content, written aside then renamed in
  local tmp
  tmp="$(dirname "$1")/.tmp-$(basename "$1")"
  head -c "$(($2 * 1048576))" /dev/urandom >"$tmp"
  mv "$tmp" "$1"
}
# time_sync SRC DST: milliseconds until DST has SRC's content.
time_sync() {
  local t0
  t0=$(now_ms)
  wait_until "$2 to get $(basename "$1")" 120 same_file "$1" "$2"
  echo $(($(now_ms) - t0))
}
mibps() { awk -v mib="$1" -v ms="$2" 'BEGIN { printf "%.1f", mib / (ms / 1000) }'; }

# ---------------------------------------------------------------- checks
check_lan() {
  say "check 1: LAN pair, mDNS only"
  start l1 "${P}l1"
  start l2 "${P}l2"
  local id1 id2
  id1=$(device_id l1)
  id2=$(device_id l2)
  wait_until "l1 and l2 to find each other by mDNS" 30 connected_to l2 "$id1"
  connected_to l1 "$id2" >/dev/null || fail "l1 does not list l2"
  mkdir -p "$WORK/lan1" "$WORK/lan2"
  echo "from l1" >"$WORK/lan1/hello.txt"
  local f key
  f=$(share l1 "$WORK/lan1")
  key=$(invite l1 "$f")
  join l2 "$key" "$WORK/lan2" >/dev/null
  wait_until "l2 to get hello.txt" 60 same_file "$WORK/lan1/hello.txt" "$WORK/lan2/hello.txt"
  echo "from l2" >"$WORK/lan2/reply.txt"
  wait_until "l1 to get reply.txt" 60 same_file "$WORK/lan2/reply.txt" "$WORK/lan1/reply.txt"
  stop l1
  stop l2
  say "check 1 PASS: found by mDNS alone and synced both ways"
}

# nat_pair TAG [--relay-always]: fresh h1/h2 homes (suffix TAG) behind the
# NATs, a folder on h1 with one file, h2 joined through the relayed address
# in the invitation key. Sets A, B (names), IDA, IDB, DIRA, DIRB, FOLDER,
# T_JOIN (ms when the join started).
nat_pair() {
  local tag=$1
  shift
  A="h1$tag" B="h2$tag"
  local flags
  flags=${PAIR_RELAY_FLAGS:-$(relay_flags)}
  # shellcheck disable=SC2086
  start "$A" "${P}h1" $flags "$@"
  # shellcheck disable=SC2086
  start "$B" "${P}h2" $flags "$@"
  IDA=$(device_id "$A")
  IDB=$(device_id "$B")
  wait_until "$A to hold a relay slot" 60 has_slot "$A"
  wait_until "$B to hold a relay slot" 60 has_slot "$B"
  DIRA="$WORK/dir-$A" DIRB="$WORK/dir-$B"
  mkdir -p "$DIRA" "$DIRB"
  echo "written behind nat1 ($tag)" >"$DIRA/first.txt"
  FOLDER=$(share "$A" "$DIRA")
  local key
  key=$(invite "$A" "$FOLDER")
  T_JOIN=$(now_ms)
  join "$B" "$key" "$DIRB" >/dev/null
  wait_until "$B to get first.txt" 60 same_file "$DIRA/first.txt" "$DIRB/first.txt"
  say "$B joined through the relayed address and had first.txt $(($(now_ms) - T_JOIN)) ms after the join started"
}

# direct_after_ms NAME PEER: the time to direct connection NAME logged.
direct_after_ms() {
  grep -s '"direct connection to a peer reached over a relay"' "$WORK/$1.log" | grep "$(short "$2")" | head -1 | jq -r .after_ms || true
}
short() { echo "${1: -7}"; }

DIRECT_MIBPS="" RELAYED_MIBPS=""
check_nat() {
  say "check 2a: NATed pair through the relay, hole punch to direct"
  nat_pair punch --relay-always
  wait_until "$B to get a direct connection to $A" 30 direct_to "$B" "$IDA"
  local ms
  ms=$(direct_after_ms "$B" "$IDA")
  [ -n "$ms" ] && [ "$ms" != null ] || ms=$(direct_after_ms "$A" "$IDB")
  say "direct connection: $(status "$B" | jq -r --arg p "$IDA" '[.connections[] | select(.peer == $p and (.relayed | not)) | .addr] | join(" ")')"
  say "time to direct (relayed connection opened -> direct connection opened): ${ms} ms"
  echo "back from nat2" >"$DIRB/back.txt"
  wait_until "$A to get back.txt" 60 same_file "$DIRB/back.txt" "$DIRA/back.txt"
  local before after t
  before=$(grep -c '"fetching chunks over relayed connections"' "$WORK/$B.log" || true)
  write_file "$DIRA/big-direct.bin" "$THROUGHPUT_MIB"
  t=$(time_sync "$DIRA/big-direct.bin" "$DIRB/big-direct.bin")
  DIRECT_MIBPS=$(mibps "$THROUGHPUT_MIB" "$t")
  after=$(grep -c '"fetching chunks over relayed connections"' "$WORK/$B.log" || true)
  [ "$after" = "$before" ] || fail "$B fetched chunks over the relay although it had a direct connection"
  say "direct: ${THROUGHPUT_MIB} MiB synced in ${t} ms = ${DIRECT_MIBPS} MiB/s"
  stop "$A"
  stop "$B"
  say "check 2a PASS"
}

check_blocked() {
  say "check 2b: hole punching blocked (UDP and all TCP but the relay's dropped at both NATs)"
  block_punching
  nat_pair blocked --relay-always
  relayed_to "$B" "$IDA" >/dev/null || fail "$B has no relayed connection to $A"
  direct_to "$B" "$IDA" >/dev/null && fail "$B got a direct connection although punching is blocked"
  echo "back from nat2" >"$DIRB/back.txt"
  wait_until "$A to get back.txt over the relay" 60 same_file "$DIRB/back.txt" "$DIRA/back.txt"
  write_file "$DIRA/big-relayed.bin" "$THROUGHPUT_MIB"
  local t
  t=$(time_sync "$DIRA/big-relayed.bin" "$DIRB/big-relayed.bin")
  RELAYED_MIBPS=$(mibps "$THROUGHPUT_MIB" "$t")
  direct_to "$B" "$IDA" >/dev/null && fail "$B got a direct connection although punching is blocked"
  say "relayed: ${THROUGHPUT_MIB} MiB synced in ${t} ms = ${RELAYED_MIBPS} MiB/s"
  stop "$A"
  stop "$B"
  unblock_punching
  say "check 2b PASS: synced through the relay only"
}

# check_limits: with a relay whose circuits carry only LIMIT_MIB per
# direction and hole punching blocked, a file several times larger still
# syncs: the relay resets each full circuit, the devices open new ones and the
# transfer resumes where it stopped.
LIMIT_MIB=4
check_limits() {
  say "check 2c: relay limits obeyed: ${LIMIT_MIB} MiB circuits, hole punching blocked"
  start relaysmall "${P}relay" --listen /ip4/0.0.0.0/tcp/22200 --listen /ip4/0.0.0.0/udp/22200/quic-v1 \
    --announce /ip4/172.32.0.1/tcp/22200 --announce /ip4/172.32.0.1/udp/22200/quic-v1 --circuit-mib "$LIMIT_MIB"
  local small
  small=$(device_id relaysmall)
  block_punching
  PAIR_RELAY_FLAGS=$(relay_flags "$small" 22200) nat_pair limits --relay-always
  local mib=$((LIMIT_MIB * 4)) t circuits
  write_file "$DIRA/over-limit.bin" "$mib"
  t=$(time_sync "$DIRA/over-limit.bin" "$DIRB/over-limit.bin")
  circuits=$(grep -c '"msg":"relayed connection"' "$WORK/$B.log" || true)
  [ "$circuits" -ge 2 ] || fail "$B opened $circuits relayed connection(s) for $mib MiB through ${LIMIT_MIB} MiB circuits: the limit was not enforced"
  direct_to "$B" "$IDA" >/dev/null && fail "$B got a direct connection although punching is blocked"
  say "relayed ${mib} MiB through ${LIMIT_MIB} MiB circuits in ${t} ms over ${circuits} relayed connections"
  stop "$A"
  stop "$B"
  stop relaysmall
  unblock_punching
  say "check 2c PASS"
}

check_offline() {
  say "check 3: a device offline catches up from the relay replica while the author is gone"
  nat_pair off --relay-always
  # The relay joins the folder with an invitation: an always-on replica.
  local key
  key=$(invite "$A" "$FOLDER")
  mkdir -p "$WORK/dir-relay"
  join relay "$key" "$WORK/dir-relay" >/dev/null
  wait_until "the relay to get first.txt" 60 same_file "$DIRA/first.txt" "$WORK/dir-relay/first.txt"
  stop "$B"
  echo "written while h2 was offline" >"$DIRA/later.txt"
  wait_until "the relay to get later.txt" 60 same_file "$DIRA/later.txt" "$WORK/dir-relay/later.txt"
  stop "$A"
  cp "$DIRA/later.txt" "$WORK/later.expected"
  # shellcheck disable=SC2046
  start "$B" "${P}h2" $(relay_flags) --relay-always
  wait_until "$B to catch up from the relay" 60 same_file "$WORK/later.expected" "$DIRB/later.txt"
  connected_to "$B" "$IDA" >/dev/null && fail "$B is connected to the author, who is stopped"
  stop "$B"
  say "check 3 PASS: caught up from the relay with the author offline"
}

check_autonat() {
  say "AutoNAT: time to a relay slot without --relay-always"
  # shellcheck disable=SC2046
  start h1auto "${P}h1" $(relay_flags)
  local t0 t
  t0=$(now_ms)
  wait_until "h1auto to hold a relay slot after AutoNAT" 120 has_slot h1auto
  t=$(($(now_ms) - t0))
  say "AutoNAT said private and the slot was reserved ${t} ms after the control API came up"
  stop h1auto
}

# punch_once I: one fresh pair; sets PUNCH to the time to direct in ms, or "fail".
punch_once() {
  local i=$1
  # shellcheck disable=SC2046
  start "h1r$i" "${P}h1" $(relay_flags) --relay-always
  # shellcheck disable=SC2046
  start "h2r$i" "${P}h2" $(relay_flags) --relay-always
  local ida idb
  ida=$(device_id "h1r$i")
  idb=$(device_id "h2r$i")
  wait_until "h1r$i slot" 60 has_slot "h1r$i"
  wait_until "h2r$i slot" 60 has_slot "h2r$i"
  local res=fail end
  # h2 dials h1 through the relay: joining is the product's way to do it.
  mkdir -p "$WORK/loop$i-a" "$WORK/loop$i-b"
  local f key
  f=$(share "h1r$i" "$WORK/loop$i-a")
  key=$(invite "h1r$i" "$f")
  join "h2r$i" "$key" "$WORK/loop$i-b" >/dev/null
  end=$(($(now_ms) + 20000))
  while [ "$(now_ms)" -lt "$end" ]; do
    if direct_to "h2r$i" "$ida" >/dev/null 2>&1; then
      res=$(direct_after_ms "h2r$i" "$ida")
      [ -n "$res" ] && [ "$res" != null ] || res=$(direct_after_ms "h1r$i" "$idb")
      break
    fi
    sleep 0.1 # polling interval
  done
  stop "h1r$i"
  stop "h2r$i"
  PUNCH=$res
}

loop_punch() {
  say "hole-punch loop: $LOOP_N fresh pairs"
  local ok=0 i r times=()
  for i in $(seq 1 "$LOOP_N"); do
    punch_once "$i"
    r=$PUNCH
    say "run $i: $r"
    if [ "$r" != fail ]; then ok=$((ok + 1)); times+=("$r"); fi
  done
  say "hole punching succeeded in $ok of $LOOP_N runs"
  if [ ${#times[@]} -gt 0 ]; then
    say "time to direct (ms): $(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "min %d median %d max %d", a[1], a[int((NR+1)/2)], a[NR]}')"
  fi
}

# ---------------------------------------------------------------- checks 4, 5
WIT_PORT=22300 GW="172.32.0.1:8080" METRICS="172.32.0.1:9100"
start_witness() {
  start relaywit "${P}relay" --listen "/ip4/0.0.0.0/tcp/$WIT_PORT" --listen "/ip4/0.0.0.0/udp/$WIT_PORT/quic-v1" \
    --announce "/ip4/172.32.0.1/tcp/$WIT_PORT" --announce "/ip4/172.32.0.1/udp/$WIT_PORT/quic-v1" \
    --gateway "$GW" --metrics "$METRICS"
}
# file_mode_readonly PATH: no write bit (root ignores modes, so test -w cannot tell).
file_readonly() { [ $((0$(stat -c %a "$1") & 0222)) -eq 0 ]; }
witness_known() { cli "$1" witnesses "$FOLDER" --json | jq -e --arg w "$WIT_ID" '.witnesses | map(.device) == [$w]'; }
wit_has() { [ -n "$(find "$WORK/dir-wit" -name "$1" 2>/dev/null)" ]; }

WIT_ID=""
check_locks() {
  say "check 4: the relay as an always-on replica and lock witness"
  start_witness
  WIT_ID=$(device_id relaywit)
  PAIR_RELAY_FLAGS=$(relay_flags "$WIT_ID" "$WIT_PORT") nat_pair wit --relay-always
  echo "second file" >"$DIRA/second.txt"
  wait_until "$B to get second.txt" 60 same_file "$DIRA/second.txt" "$DIRB/second.txt"
  # The relay becomes a device of h1's user and syncs the folder.
  local key rep li
  key=$(cli "$A" device add "$WIT_ID" --json | jq -r .key)
  mkdir -p "$WORK/dir-wit"
  cli relaywit device link "$key" "$WORK/dir-wit" >/dev/null
  wait_until "the relay to get second.txt as a device of h1's user" 60 wit_has second.txt
  rep=$(cli "$A" witnesses "$FOLDER" "$WIT_ID" --json)
  [ "$(jq -r .quorum <<<"$rep")" = 1 ] || fail "witnesses: $rep"
  wait_until "$B to know the relay witness" 30 witness_known "$B"
  li=$(cli "$B" lock "$DIRB/first.txt" --json)
  [ "$(jq -r .state <<<"$li")" = granted ] || fail "lock with the witness reachable: $li"
  say "lock granted by the relay witness: acks $(jq -r .acks <<<"$li") of quorum $(jq -r .quorum <<<"$li")"
  wait_until "first.txt to be read-only on $A (locked by $B)" 30 file_readonly "$DIRA/first.txt"
  cli "$A" lock "$DIRA/first.txt" --json >/dev/null 2>&1 && fail "$A got a lock on a file $B holds"
  # The witness goes away; the pair keeps its direct connection.
  wait_until "$B to get a direct connection to $A" 30 direct_to "$B" "$IDA"
  stop relaywit
  li=$(cli "$B" lock "$DIRB/second.txt" --wait 3s --json)
  [ "$(jq -r .state <<<"$li")" = pending ] || fail "lock with the witness stopped: $li"
  echo "edited while the lock is pending" >"$DIRB/second.txt"
  wait_until "$A to get the edit made while the lock was pending" 60 same_file "$DIRB/second.txt" "$DIRA/second.txt"
  say "with the witness stopped: lock pending (acks $(jq -r .acks <<<"$li")), editing still syncs"
  say "check 4 PASS"
}

# gw_get OUT URL CURLARGS...: the HTTP status of a curl from h2's namespace.
gw_get() {
  local out=$1 url=$2
  shift 2
  ip netns exec "${P}h2" curl -s -o "$out" -w '%{http_code}' "$@" "$url"
}
gw_expect() { # gw_expect CODE TEXT URL CURLARGS...
  local code=$1 text=$2 url=$3 got
  shift 3
  got=$(gw_get "$WORK/gw.body" "$url" "$@")
  [ "$got" = "$code" ] || fail "curl ${url:0:40}… $*: HTTP $got, want $code: $(head -c 300 "$WORK/gw.body")"
  grep -q "$text" "$WORK/gw.body" || fail "curl ${url:0:40}… $*: no \"$text\" in: $(head -c 300 "$WORK/gw.body")"
}
relay_knows_link() { cli relaywit link list --all --json | jq -e --arg p "$1" 'map(select(.path == $p)) | length > 0'; }
relay_link_state() { cli relaywit link list --all --json | jq -e --arg p "$1" --arg s "$2" 'map(select(.path == $p and .state == $s)) | length > 0'; }

check_gateway() {
  say "check 5: share links through the relay's HTTP gateway, with curl from h2's namespace"
  start_witness
  local tok url
  tok=$(echo s3cret | cli "$A" link create "$DIRA/first.txt" --password-stdin --max-downloads 1 --json | jq -r .token)
  url="http://$GW/l/$tok"
  wait_until "the relay replica to know the link" 60 relay_knows_link first.txt
  gw_expect 200 'type="password"' "$url"
  gw_expect 403 "needs a password" "$url/file"
  gw_expect 403 "wrong password" "$url/file" --data-urlencode password=guess
  gw_expect 200 "" "$url/file" --data-urlencode password=s3cret -D "$WORK/gw.headers"
  cmp -s "$WORK/gw.body" "$DIRA/first.txt" || fail "the file downloaded through the gateway differs"
  grep -qi 'content-disposition: attachment; filename=first.txt' "$WORK/gw.headers" || fail "no file name: $(cat "$WORK/gw.headers")"
  gw_expect 410 "download limit is reached" "$url/file" -H "X-Meshfold-Password: s3cret"
  say "password link: 403 without and with a wrong password, 200 with it, 410 once its one download is used"
  tok=$(cli "$A" link create "$DIRA/second.txt" --expires 20s --json | jq -r .token)
  url="http://$GW/l/$tok"
  wait_until "the relay replica to know the link" 15 relay_knows_link second.txt
  gw_expect 200 "second.txt" "$url"
  # Watch the expiry on the relay's own list, not by polling the gateway
  # (that would run into the per-address rate limit).
  wait_until "the link to expire on the relay" 40 relay_link_state second.txt expired
  gw_expect 410 "expired" "$url/file"
  gw_expect 404 "not a valid link token" "http://$GW/l/mflink1-AAAA/file"
  ip netns exec "${P}h2" curl -sf "http://$METRICS/metrics" | grep -q 'meshfold_gateway_requests_total{code="410"}' ||
    fail "the relay's metrics do not count the gateway's refusals"
  say "expiring link: page 200, then 410 expired; bad token 404; counted in the relay's metrics"
  stop relaywit
  stop "$A"
  stop "$B"
  say "check 5 PASS"
}

setup
check_isolated
start_relay
say "relay $RELAY_ID at 172.32.0.1:22100"
case "$MODE" in
  all)
    check_lan
    check_nat
    check_blocked
    check_limits
    check_offline
    check_locks
    check_gateway
    say "throughput of ${THROUGHPUT_MIB} MiB: direct ${DIRECT_MIBPS} MiB/s, relayed ${RELAYED_MIBPS} MiB/s"
    ;;
  lan) check_lan ;;
  nat) check_nat ;;
  blocked) check_blocked ;;
  limits) check_limits ;;
  offline) check_offline ;;
  locks) check_locks; stop "$A"; stop "$B" ;;
  gateway) check_locks; check_gateway ;;
  autonat) check_autonat ;;
  loop) loop_punch ;;
  *) fail "unknown mode $MODE (all, lan, nat, blocked, limits, offline, locks, gateway, autonat, loop [N])" ;;
esac
say "PASS ($MODE)"
