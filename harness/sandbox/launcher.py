"""Starts one untrusted program inside Linux namespaces; run by ``harness.sandbox``, never imported.

Standard library only and started as ``python -I -S`` so that nothing from the project or the
environment runs in the same process as the untrusted program. Its argument is a JSON object:
``{"workdir": ..., "argv": [...], "env": {...}, "limits": {...}, "run_as": [uid, gid], "reach": [dirs],
"isolate": true}``.
Steps, each one skipped with a note on stderr only where the kernel refuses it:

1. new user, mount, PID and network namespaces (no network: only a loopback that is down); a
   launcher run as root maps the namespace's root to ``run_as`` (nobody) on the host, so nothing
   that checks uids sees the host's root; where the kernel refuses namespaces, a root launcher
   becomes ``run_as`` instead, if nobody can reach the interpreter (``reach``);
2. a fork into the new PID namespace, whose first process only reaps: the program is its child,
   and when the program ends, the first process exits and the kernel kills everything left in the
   namespace; the launcher waits and exits as the program did (128 + signal if it was killed);
3. every mount read-only except the program's working directory; fresh private ``/tmp``,
   ``/dev/shm`` and ``/proc`` (whose ``pid_max`` caps the namespace's PIDs and whose kernel knobs
   are read-only); a closed directory on the way to the interpreter opened (root launcher); a ``/dev`` holding only null, zero, random, urandom and the
   terminal nodes, so not even a root-mapped program reaches a disk device;
4. a second, nested user namespace, so the program holds no capability over those mounts and cannot
   make them writable again;
5. resource limits (CPU seconds, address space, file size, processes, open files, no core dumps),
   then ``exec`` of the program with a scrubbed environment.
"""

import ctypes
import encodings.latin_1  # noqa: F401  loaded now: once nobody, the launcher may not read the stdlib
import encodings.unicode_escape  # noqa: F401
import json
import os
import resource
import signal
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
# Flags that must be kept on a remount inside a user namespace, or the kernel refuses it.
KEEP = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4

libc = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _enter_user_namespace(flags: int) -> None:
    """Be uid 0 in a new user namespace, mapped to the uid we had (the only mapping allowed to us)."""
    uid, gid = os.geteuid(), os.getegid()
    _call(libc.unshare(CLONE_NEWUSER | flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def _enter_user_namespace_as(host_ids: list[int], flags: int) -> None:
    """As the host's root: be uid 0 in a new user namespace that is ``host_ids`` (nobody) outside.

    A program whose host uid is root passes every check that goes by uid rather than capability:
    it could connect to root's Unix sockets (a container daemon's, say) across the network
    namespace, and RLIMIT_NPROC would not bind it. Mapping another host id must be written from
    outside the new namespace, so a helper that stays outside writes the maps."""
    ready, go = os.pipe()
    helper = os.fork()
    if helper == 0:
        os.close(go)
        if os.read(ready, 1) != b"u":  # the parent could not unshare: map nothing
            os._exit(1)
        try:
            parent = os.getppid()
            _write(f"/proc/{parent}/uid_map", f"0 {host_ids[0]} 1")
            _write(f"/proc/{parent}/gid_map", f"0 {host_ids[1]} 1")
        except OSError:
            os._exit(1)
        os._exit(0)
    os.close(ready)
    unshared = libc.unshare(CLONE_NEWUSER | flags)
    errno = ctypes.get_errno()
    os.write(go, b"u" if unshared == 0 else b"-")
    os.close(go)
    mapped = os.waitpid(helper, 0)[1] == 0
    if unshared != 0:
        raise OSError(errno, f"unshare: {os.strerror(errno)}")
    if not mapped:
        raise OSError(1, "the uid map of the namespace could not be written")


def _become_namespace_root() -> None:
    """Take the namespace's uid 0 (nobody outside); until now file checks still saw the host's root."""
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 1)  # else /proc/self stays the host root's and the maps unwritable


def _reach(paths: list[str]) -> dict[str, dict[str, int]]:
    """For each directory on the way to ``paths`` that others may not enter (``/root`` holding a
    pyenv Python, say): its next steps, each with an ``O_PATH`` descriptor opened now, while the
    file checks still see the host's root, for :func:`_open_the_way` to bind once it is nobody."""
    ways: dict[str, dict[str, int]] = {}
    for target in paths:
        steps = [part for part in target.split("/") if part]
        for depth in range(len(steps)):
            directory = "/" + "/".join(steps[:depth])
            if os.stat(directory).st_mode & 0o001:
                continue
            step = ways.setdefault(directory, {})
            if steps[depth] not in step:
                step[steps[depth]] = os.open(f"{directory.rstrip('/')}/{steps[depth]}", os.O_PATH)
    return ways


def _open_the_way(ways: dict[str, dict[str, int]], notes: list[str]) -> None:
    """Over each closed directory, a read-only tmpfs that holds only the next steps, bound from the
    descriptors: the interpreter keeps its paths (a pyenv Python finds libpython by absolute path)."""
    for directory, steps in ways.items():
        if (
            libc.mount(b"tmpfs", directory.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16k,mode=755")
            != 0
        ):
            notes.append(f"{directory} stays closed to the program ({os.strerror(ctypes.get_errno())})")
            continue
        for name, step in steps.items():
            inside = f"{directory.rstrip('/')}/{name}"
            os.mkdir(inside)
            if (
                libc.mount(f"/proc/self/fd/{step}".encode(), inside.encode(), None, MS_BIND | MS_REC, None)
                != 0
            ):
                notes.append(f"{inside} stays closed to the program ({os.strerror(ctypes.get_errno())})")
            else:
                _read_only(inside, notes)
            os.close(step)
        libc.mount(None, directory.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def _read_only(point: str, notes: list[str]) -> None:
    """Remount one mount point read-only, keeping the flags a user namespace may not drop."""
    with open("/proc/self/mountinfo") as handle:
        options = [line.split()[5].split(",") for line in handle if _unescape(line.split()[4]) == point]
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for option in options[-1] if options else []:
        flags |= KEEP.get(option, 0)
    if libc.mount(None, point.encode(), None, flags, None) != 0:
        notes.append(f"{point} stays as it is ({os.strerror(ctypes.get_errno())})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def _lock_down_mounts(workdir: str, processes: int) -> list[str]:
    notes = []
    _call(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    _call(libc.mount(workdir.encode(), workdir.encode(), None, MS_BIND | MS_REC, None), "bind workdir")
    with open("/proc/self/mountinfo") as handle:
        mounts = [(_unescape(line.split()[4]), line.split()[5].split(",")) for line in handle]
    for point, options in mounts:
        if point == workdir or point.startswith(workdir + "/"):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= KEEP.get(option, 0)
        if libc.mount(None, point.encode(), None, flags, None) != 0:
            notes.append(f"{point} stays as it is ({os.strerror(ctypes.get_errno())})")
    _minimal_dev(notes)
    for point in ("/tmp", "/dev/shm", "/var/tmp"):
        if os.path.isdir(point) and not workdir.startswith(point + "/"):
            if libc.mount(b"tmpfs", point.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16m") != 0:
                notes.append(f"no private {point} ({os.strerror(ctypes.get_errno())})")
    if libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        notes.append(f"/proc still shows outside processes ({os.strerror(ctypes.get_errno())})")
    else:
        _cap_pids(processes, notes)
        _proc_read_only(notes)
    return notes


def _proc_read_only(notes: list[str]) -> None:
    """Make the kernel's knobs in the fresh /proc read-only, as container runtimes do: a program
    whose uid is the host's root (a harness run as root) passes their permission checks, which
    are by uid, not capability, so it could otherwise set sysctls or write ``sysrq-trigger``."""
    for point in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"):
        if not os.path.exists(point):
            continue
        bound = libc.mount(point.encode(), point.encode(), None, MS_BIND, None) == 0
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        if not bound or libc.mount(None, point.encode(), None, flags, None) != 0:
            notes.append(f"{point} stays writable ({os.strerror(ctypes.get_errno())})")


def _cap_pids(processes: int, notes: list[str]) -> None:
    """Let the kernel refuse forks past a few hundred processes (per-namespace ``pid_max``, Linux
    6.14+; 301 is the least it takes). The first process's count stops a fork bomb at ``processes``,
    but it polls: under load a bomb run as host root (which RLIMIT_NPROC does not bind) forked
    thousands of processes before the poll ran, and killing those outlived the run."""
    try:
        _write("/proc/sys/kernel/pid_max", str(max(301, processes + 2)))
    except OSError as error:
        notes.append(f"no kernel cap on processes ({error.strerror}); the first process's count only")


def _minimal_dev(notes: list[str]) -> None:
    """Replace /dev by a tmpfs with bind mounts of the harmless device nodes only."""
    keep = [
        name
        for name in ("null", "zero", "random", "urandom", "full", "tty")
        if os.path.exists(f"/dev/{name}")
    ]
    stash = "/proc/self/fd"  # any directory works; the old /dev stays reachable through this fd
    old_dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY)
    if libc.mount(b"tmpfs", b"/dev", b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=64k,mode=755") != 0:
        notes.append(f"/dev stays as it is ({os.strerror(ctypes.get_errno())})")
        return
    os.mkdir("/dev/shm")
    for name in keep:
        open(f"/dev/{name}", "w").close()
        source = f"{stash}/{old_dev}/{name}".encode()
        if libc.mount(source, f"/dev/{name}".encode(), None, MS_BIND, None) != 0:
            notes.append(f"no /dev/{name} ({os.strerror(ctypes.get_errno())})")
    os.close(old_dev)
    for name, target in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        os.symlink(f"/proc/self/fd/{target}", f"/dev/{name}")
    os.symlink("/proc/self/fd", "/dev/fd")


def _apply_limits(limits: dict) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
    memory = limits["memory_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    written = limits["file_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (written, written))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _first_process(program: int, processes: int, own_proc: bool) -> None:
    """PID 1 of the namespace: reap orphans until the program ends, then exit, which makes the kernel
    kill every process left in the namespace (the exit completes only once they are all gone).

    It also counts the namespace's processes, so a fork bomb is stopped here (within about 10 ms)
    where neither RLIMIT_NPROC (a host-root program without namespaces) nor the kernel's pid_max
    cap (before Linux 6.14) binds it."""
    while True:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == program:
            os._exit(_exit_code(status))
        if pid == 0:
            if own_proc and sum(name.isdigit() for name in os.listdir("/proc")) > processes + 1:
                os.kill(-1, signal.SIGKILL)  # every process of the namespace but this one
                print("sandbox: process-limit", file=sys.stderr, flush=True)
                os._exit(128 + signal.SIGKILL)
            time.sleep(0.01)


def _ancestors(paths: list[str]) -> set[str]:
    """Every directory on the way to each of ``paths``, the paths included."""
    found = set()
    for path in paths:
        steps = [part for part in path.split("/") if part]
        found |= {"/" + "/".join(steps[:depth]) for depth in range(len(steps) + 1)}
    return found


def _exit_code(status: int) -> int:
    """The shell's convention: the exit status, or 128 + the signal that killed the process."""
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _give_workdir(workdir: str, ids: list[int]) -> None:
    for name in [".", *os.listdir(workdir)]:  # the program's directory becomes its own
        os.chown(os.path.join(workdir, name), *ids)


def main() -> None:
    config = json.loads(sys.argv[1])
    workdir = config["workdir"]
    notes: list[str] = []
    isolated = False
    host_root = os.geteuid() == 0
    ways: dict[str, dict[str, int]] = {}
    if config["isolate"]:
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET
        try:
            if host_root:
                _give_workdir(workdir, config["run_as"])
                _enter_user_namespace_as(config["run_as"], flags)
                ways = _reach(config["reach"])  # opened in the new mount namespace, or binds fail
                _become_namespace_root()
            else:
                _enter_user_namespace(flags)
            isolated = True
        except OSError as error:
            notes.append(f"no namespaces ({error}); limits and a separate session only")
            for steps in ways.values():
                for step in steps.values():
                    os.close(step)
            if host_root:
                _give_workdir(workdir, [0, 0])
    if not isolated and host_root:
        if all(os.stat(path).st_mode & 0o001 for path in _ancestors(config["reach"])):
            _give_workdir(workdir, config["run_as"])
            os.setgroups([])
            os.setgid(config["run_as"][1])
            os.setuid(config["run_as"][0])
        else:
            notes.append("runs as root: the user nobody cannot reach this Python")
    if isolated:
        init = os.fork()
        if init:  # outside the namespaces: wait, and exit the way the program did
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)  # only SIGKILL of the namespace ends a run early
            os._exit(_exit_code(os.waitpid(init, 0)[1]))
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher killed: the whole namespace goes
        notes += _lock_down_mounts(workdir, config["limits"]["processes"])
        _open_the_way(ways, notes)
        try:  # keep uid 0 inside, lose every capability over the mounts and the network
            _enter_user_namespace(0)
        except OSError as error:
            notes.append(f"no nested user namespace ({error}); mounts could be made writable again")
        program = os.fork()
        if program:
            _first_process(
                program,
                config["limits"]["processes"],
                own_proc=not any(n.startswith("/proc still") for n in notes),
            )
    for note in notes:
        print(f"sandbox: {note}", file=sys.stderr)
    os.chdir(workdir)
    _apply_limits(config["limits"])
    os.execve(config["argv"][0], config["argv"], config["env"])


if __name__ == "__main__":
    main()
