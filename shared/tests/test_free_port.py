"""free_port: ports for the test programs that no outgoing connection can take before they bind them."""
import socket
from pathlib import Path

import kontor.devinfra as devinfra
from kontor.devinfra import free_port


def _ephemeral() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_blocks_of_ports_lie_outside_the_ephemeral_range_and_can_all_be_bound():
    ephemeral = _ephemeral()
    for _ in range(30):
        base = free_port(6)
        ports = range(base, base + 6)
        assert not any(p in ephemeral for p in ports), (base, ephemeral)
        assert ports[-1] <= 65535
        sockets = [socket.socket() for _ in ports]
        try:
            for s, p in zip(sockets, ports, strict=True):
                s.bind(("127.0.0.1", p))  # raises if any of them is taken
        finally:
            for s in sockets:
                s.close()


def test_a_block_with_one_held_port_is_passed_over(monkeypatch):
    low = _ephemeral().start
    monkeypatch.setattr(devinfra.secrets, "choice", lambda spans: (20000, low - 3))
    held = free_port()
    while held >= low - 6:  # keep the test's block in the span below the ephemeral range
        held = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", held))
        holder.listen()
        # first a block whose last port is the held one, then the block right after it
        offsets = iter([held - 2 - 20000, held + 1 - 20000])
        monkeypatch.setattr(devinfra.secrets, "randbelow", lambda n: next(offsets))
        assert free_port(3) == held + 1
