"""raftlock's fault test: a Jepsen-style harness.

Real raftlock processes in Linux network namespaces, real faults (kill -9, SIGSTOP,
iptables partitions, libfaketime clocks, full and failing disks), a recorded history of
every client operation, and checkers that judge the history on its own: no lock held by
two owners at once, fencing tokens that never go back or repeat, linearizable registers,
and no acknowledged write lost.

    python3 -m tests.nemesis --help        (from the repository root; scripts/nemesis.sh
                                            is the front door)
"""
