"""The node's event store (device/sw/app/events.py) under MicroPython: packed entries, the oldest
dropped when full, ACKs found through the ring of recent sends, parking, clock correction, and
no allocation per event.

MicroPython script: micropython tests/device/events_runner.py [repo_root]
Prints one line per failed check and, last, exactly "N passed, M failed".
"""
import gc
import sys


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path

from sw.app import events, power  # noqa: E402
from sw.app.events import PARKED, SENT, UNSYNCED  # noqa: E402


check("16 bytes an entry", events.SIZE == 16)
st = events.Store(power.STORE_MAX)
check("the store is one 1 KB block", len(st.buf) == 1024 and st.n == 0)

# entries come back as they went in, in order
for k in range(5):
    gone = st.add(0x10000 + k, k % 3, 50 + k, 3000 + k, 1_797_000_000 + k, k * 100, k == 0)
    check("room for %d" % k, gone is None)
e = st.get(3)
check("fields kept", e[:6] == (0x10003, 1_797_000_003, 300, 3003, 0, 53), repr(e))
check("a new entry is held", st.tries(3) == 0 and st.held() == 5)
check("unsynced flag", st.state(0) & UNSYNCED and not st.state(1) & UNSYNCED)

# the clock's first WELCOME moves timestamps taken before it, and only those
st.resync(1000)
check("unsynced timestamps corrected", st.get(0)[1] == 1_797_001_000
      and not st.state(0) & UNSYNCED)
check("synced ones untouched", st.get(1)[1] == 1_797_000_001)

# sends: the ring maps a frame counter to its entry, whatever moved since
st.sent(1, 500)
st.sent(2, 501)
st.sent(1, 502)  # a resend: a new counter, the same entry
st.flag(1, SENT, True)
st.flag(2, SENT, True)
check("tries count sends", st.tries(1) == 2 and st.tries(2) == 1)
check("held excludes sent ones", st.held() == 3)
check("the ACK of the first send still finds it", st.find(500) == 1)
check("the ACK of the resend too", st.find(502) == 1)
check("an unknown counter finds nothing", st.find(999) == -1)
st.remove(0)
check("entries move up when one goes", st.find(501) == 1 and st.get(1)[0] == 0x10002)
check("counts shrink", st.n == 4)

# resend timing: 64 ms steps, modulo 2**16 of them
st.set_due(0, 100000)
check("due in the future, within a step", 1000 <= st.due_in(0, 99000) <= 1128,
      repr(st.due_in(0, 99000)))
check("due now or past", st.due_in(0, 100100) <= 0)
st.set_due(1, 0x7FFFFFF0)
check("near the end of a tick period", st.due_in(1, 0x7FFFFFF0 - 5000) > 0
      and st.due_in(1, 0x7FFFFFF0 + 100) <= 0)

# parking and the next round
check("two held, two sent", st.held() == 2)
st.flag(0, PARKED, True)  # a sent one that ran out of retries
st.flag(2, PARKED, True)  # a held one, parked with the others
check("parked ones are not held", st.held() == 1)
check("unpark counts them back, not sent in this round", st.unpark() == 2 and st.held() == 3
      and st.tries(0) == 0 and not st.state(0) & PARKED)

# full: the oldest goes, whatever its state
st = events.Store(4)
for k in range(4):
    st.add(k + 1, 0, 0, 0, 0, 0, False)
gone = st.add(5, 2, 0, 0, 0, 0, False)
check("full: the oldest goes", gone == 1 and st.n == 4
      and [st.get(i)[0] for i in range(4)] == [2, 3, 4, 5])
# tags stay unique among stored entries however long it runs
st = events.Store(power.STORE_MAX)
for k in range(1000):
    st.add(k, 0, 0, 0, 0, 0, False)
tags = [st.buf[i * 16 + 15] for i in range(st.n)]
check("tags unique, never 0", len(set(tags)) == st.n and 0 not in tags)
st.sent(st.n - 1, 77)
check("an ACK finds only what was sent (EVENT printed)", st.find(77) == -1)
st.flag(st.n - 1, SENT, True)
check("the ring finds the youngest", st.find(77) == st.n - 1)

# nothing is allocated per event: the heap does not move over a thousand adds and removes
st = events.Store(power.STORE_MAX)


def _churn(st, n):
    for k in range(n):
        st.add(k, 0, 1, 2, 3, 4, False)
        if st.n > 32:
            st.remove(3)


_churn(st, 1)  # the function's first call may allocate; the next 1000 events may not
gc.collect()
before = gc.mem_alloc()
_churn(st, 1000)
gc.collect()
check("no allocation left per event", gc.mem_alloc() - before <= 64,
      repr(gc.mem_alloc() - before))

print(f"{counts[0]} passed, {counts[1]} failed")
sys.exit(1 if counts[1] else 0)
