"""A small network-namespace toolkit: one namespace per host on a bridge, and link faults.

:class:`Network` creates a bridge in the root namespace (so the test driver reaches every host
at 10.231.N.1's side) and, per host, a namespace with a veth whose inner end is ``eth0`` with
an address on the bridge's /24. Processes are put into a host with :func:`Network.inside`: the
calling thread enters the namespace (``setns``), so a process started there, and a socket bound
there, belong to that host. Everything carries this process's pid in its name, so a run never
touches another run's hosts, and :func:`sweep_stale` removes what a run that died left behind.

Faults on links: :meth:`Network.partition` drops every frame between two hosts (each host's
neighbour entry for the other points at a MAC that does not exist: silent loss, as a real
partition, with no iptables or kernel module); :meth:`Network.netem` adds ``tc netem`` to a
host's link when the kernel has it (it returns False otherwise); :meth:`Network.link` takes a
host off the bridge and back.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
PREFIX = "vsf"
CLONE_NEWNET = 0x40000000
NOWHERE_MAC = "02:00:00:00:de:ad"  # no interface has it: frames sent there are lost
_libc = ctypes.CDLL(None, use_errno=True)
_opened = itertools.count()  # networks made by this process: each gets its own names


def unavailable() -> str | None:
    """Why this machine cannot run the fleet (not root, no ``ip``, no netns), or None."""
    if os.geteuid() != 0:
        return "the fleet test needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "the fleet test needs iproute2's ip command"
    probe = f"{PREFIX}{os.getpid()}-probe"
    if _ip("netns", "add", probe, check=False).returncode != 0:
        return "this machine refuses `ip netns add` (no network namespaces)"
    _ip("netns", "del", probe, check=False)
    return None


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    command = [*prefix, "ip", *args] if args[0] != "tc" else [*prefix, *args]
    return subprocess.run(command, capture_output=True, text=True, check=check)


def _setns(path: Path | int) -> None:
    fd = os.open(path, os.O_RDONLY) if isinstance(path, Path) else path
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns: {os.strerror(errno)}")
    finally:
        if isinstance(path, Path):
            os.close(fd)


class Network:
    """Hosts in network namespaces on one bridge; torn down by :meth:`close` (idempotent)."""

    def __init__(self, hosts: Sequence[str]) -> None:
        # vsf<pid>x<n>: at most 12 characters, so that "<tag>br" and "<tag>p5" fit IFNAMSIZ.
        number = next(_opened) % 10
        self.tag = f"{PREFIX}{os.getpid()}x{number}"
        self.subnet = f"10.231.{(os.getpid() * 10 + number) % 250}"
        self.bridge = f"{self.tag}br"
        self.addresses = {host: f"{self.subnet}.{n + 2}" for n, host in enumerate(hosts)}
        self.macs: dict[str, str] = {}
        self._created: list[str] = []

    def ns(self, host: str) -> str:
        """The namespace name of ``host``."""
        return f"{self.tag}-{host}"

    def open(self) -> Network:
        """Create the bridge, then one namespace and veth per host (lo and eth0 up); on a
        failure half-way, remove what was made and raise."""
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def _make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._created.append(self.bridge)
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for n, (host, address) in enumerate(self.addresses.items()):
            ns, outer, inner = self.ns(host), f"{self.tag}{n}", f"{self.tag}p{n}"
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self._created.append(outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("link", "set", inner, "name", "eth0", ns=ns)
            _ip("addr", "add", f"{address}/24", "dev", "eth0", ns=ns)
            _ip("link", "set", "eth0", "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            self.macs[host] = _ip("-br", "link", "show", "eth0", ns=ns).stdout.split()[2]

    def close(self) -> None:
        """Kill what still runs in the hosts, delete the namespaces (their veths go with them)
        and the bridge."""
        for name in reversed(self._created):
            if name.startswith(f"{self.tag}-"):
                kill_inside(name)
                _ip("netns", "del", name, check=False)
            else:  # the bridge, or a veth (gone already once its peer's namespace is)
                _ip("link", "del", name, check=False)
        self._created.clear()

    def __enter__(self) -> Network:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def inside(self, host: str) -> Iterator[None]:
        """Run the block's thread inside ``host``'s namespace (then back where it was)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(NETNS_DIR / self.ns(host))
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)

    def partition(self, a: str, b: str, *, heal: bool = False) -> None:
        """Lose every frame between hosts ``a`` and ``b`` (or heal that partition)."""
        for one, other in ((a, b), (b, a)):
            ns, address = self.ns(one), self.addresses[other]
            if heal:
                _ip("neigh", "replace", address, "lladdr", self.macs[other], "dev", "eth0", ns=ns)
                _ip("neigh", "del", address, "dev", "eth0", ns=ns, check=False)
            else:
                lost = ("lladdr", NOWHERE_MAC, "nud", "permanent")
                _ip("neigh", "replace", address, *lost, "dev", "eth0", ns=ns)

    def netem(self, host: str, *spec: str) -> bool:
        """Put ``tc netem SPEC`` on what ``host`` sends; False when the kernel has no netem."""
        done = _ip(
            "tc",
            "qdisc",
            "replace",
            "dev",
            "eth0",
            "root",
            "netem",
            *spec,
            ns=self.ns(host),
            check=False,
        )
        return done.returncode == 0

    def clear_netem(self, host: str) -> None:
        """Remove ``host``'s netem (if any)."""
        _ip("tc", "qdisc", "del", "dev", "eth0", "root", ns=self.ns(host), check=False)

    def link(self, host: str, up: bool) -> None:
        """Take ``host`` off the bridge (its cable pulled) or put it back."""
        _ip("link", "set", "eth0", "up" if up else "down", ns=self.ns(host))


def kill_inside(ns: str) -> None:
    """SIGKILL every process still in namespace ``ns`` (ones this run started there)."""
    pids = _ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid), signal.SIGCONT)
            os.kill(int(pid), signal.SIGKILL)


def sweep_stale() -> list[str]:
    """Remove the namespaces and bridges of fleet runs whose process is gone; return them."""
    removed: list[str] = []
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for name in (line.split()[0] for line in listed if line.startswith(PREFIX)):
        if not _alive(_pid_of(name)):
            kill_inside(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    links = _ip("-br", "link", "show", "type", "bridge", check=False).stdout.split("\n")
    for name in (line.split()[0] for line in links if line.startswith(PREFIX)):
        if not _alive(_pid_of(name)):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _pid_of(name: str) -> str:
    return name[len(PREFIX) :].split("x")[0].split("-")[0]


def _alive(pid: str) -> bool:
    return pid.isdigit() and Path(f"/proc/{pid}").exists()


def terminate_on_sigterm() -> None:
    """Turn SIGTERM (and SIGHUP) into SystemExit, so that every ``finally`` cleans up."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)
