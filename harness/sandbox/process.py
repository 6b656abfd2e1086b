"""Run untrusted Python programs (model-written code) so that they cannot harm the machine.

>>> run_python("print(6 * 7)").stdout
'42\\n'
>>> run_python("while True: pass", limits=Limits(timeout_s=1)).status
'timeout'

What each program gets (``harness/sandbox/launcher.py`` sets it up, then ``exec``s the program):

- a fresh temporary working directory, removed afterwards, as its only writable place: every other
  mount is read-only, ``/dev/shm`` and ``/var/tmp`` are private and empty, and ``/dev`` holds only
  null, zero, random, urandom, full and tty;
- its own PID namespace: it sees and can signal only its own processes, and all of them die with
  it; its own network namespace: no interface but a loopback that is down, so no connection leaves;
- a nested user namespace: it is "root" only inside, with no capability over the mounts or the
  network, and, when the harness itself runs as root, it is ``nobody`` to the host (files, Unix
  sockets such as a container daemon's, process limits); the kernel's knobs under ``/proc`` are
  read-only;
- limits: wall-clock timeout, CPU seconds, address space, bytes per written file (stdout and stderr
  included), open files, no core dumps, and a process count that the namespace's first process
  enforces itself, under a kernel cap of 300 PIDs per namespace (``pid_max``, Linux 6.14+): a
  fork bomb ends within about 10 ms as ``crashed``;
- a scrubbed environment (``PATH``, ``HOME``, ``LANG`` only), ``python -I`` (no user site, no
  ``PYTHON*`` variables), its own session; the whole process group is killed when it ends. With
  ``site=False`` the interpreter also starts with ``-S``: no ``site`` module, so the environment's
  ``.pth`` hooks do not run and only the standard library is on ``sys.path`` until the program
  adds more (the code checker's driver does; see ``harness/sandbox/driver.py``).

What it does not cover, plainly:

- Where the kernel refuses unprivileged user namespaces (some containers, hardened kernels),
  :func:`isolation` says so and programs run with the limits, their own session and, under root,
  the ``nobody`` user only: then a program can read what the user can, write where the user can,
  open network connections, and a process that leaves the session (``setsid`` and a double fork)
  can outlive the run. Hostile tests that need the namespaces are skipped there, with that reason.
- Reading is not restricted: a program can read any file the user (or ``nobody``) can read, so
  a checker built on this must keep hidden tests off the disk and out of the program's process.
- Under a harness run as root, a directory on the way to the interpreter that others may not
  enter (``/root`` holding a pyenv Python) is replaced, inside the program's mount namespace only,
  by a read-only one holding just that way; the interpreter's files are readable to the program.
- CPU time is shared: a program can slow its neighbours down until its own limits stop it.
- Kernel exploits are out of scope: this is process isolation, not a virtual machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).with_name("launcher.py")
NOBODY = (65534, 65534)
STATUSES = ("ok", "error", "timeout", "memory", "output", "crashed")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock, from start to the last process killed
    cpu_s: int = 10
    memory_mb: int = 1024  # address space; Python itself needs about 30 MB
    file_mb: int = 16  # largest file it may write, stdout and stderr included
    processes: int = 32  # counted inside its own user namespace
    output_chars: int = 4000  # kept of stdout and of stderr (the tail)


@dataclass
class Execution:
    """How one program ended. ``status``: ok (exit 0), error (non-zero exit), timeout (wall or CPU
    limit), memory (address-space limit), output (file-size limit), crashed (killed by a signal)."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    conversation: Any = None  # what ``converse`` returned, when one was given


class Channel:
    """Line-based talk with a running program over its stdin and stdout (see ``converse``)."""

    def __init__(self, to_program, from_program):
        self._to, self._from = to_program, from_program

    def send(self, line: str) -> bool:
        """Write one line; False when the program no longer reads (it ended)."""
        try:
            self._to.write(line.encode("utf-8") + b"\n")
            self._to.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def receive(self, max_bytes: int) -> str | None:
        """One line without its newline; None when the program ended or the line is too long."""
        line = self._from.readline(max_bytes + 1)
        if not line.endswith(b"\n") or len(line) > max_bytes:
            return None
        return line[:-1].decode("utf-8", errors="replace")


def _tail(path: Path, chars: int) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4 * chars))
        text = handle.read().decode("utf-8", errors="replace")
    return text[-chars:]


def _status(returncode: int, timed_out: bool, stderr: str, output_full: bool) -> str:
    if timed_out or returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "timeout"
    # Python ignores SIGXFSZ, so hitting the file-size limit shows as a full stdout or stderr file.
    if output_full or returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return "output"
    if "MemoryError" in stderr[-600:]:
        return "memory"
    if returncode == 0:
        return "ok"
    if returncode < 0 or returncode > 128:
        return "crashed"
    return "error"


def _kill_namespace(process: subprocess.Popen) -> None:
    # With namespaces, the launcher's child is the PID namespace's first process: killing it makes
    # the kernel kill the whole namespace, and the launcher exits once all of it is gone.
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    try:
        for child in children.read_text().split():
            os.kill(int(child), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _stop(process: subprocess.Popen) -> int:
    """End a run and everything it started; returns the launcher's exit status."""
    _kill_namespace(process)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    _kill_session(process.pid)  # without namespaces: the group, then the session
    return process.wait()


def _kill_session(leader: int) -> None:
    """Kill the process group, then any process still in the session (a group may have been left)."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields_after_name = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields_after_name[3]) == leader:  # field 6 of /proc/pid/stat: the session id
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _interpreter_paths() -> list[str]:
    """The directories a program's interpreter needs: its bin, its prefix and the base install."""
    executable = Path(sys.executable)
    paths = {executable.parent, executable.resolve().parent, Path(sys.prefix), Path(sys.base_prefix)}
    return sorted(str(path.resolve()) for path in paths)


def run_python(
    source: str,
    *,
    stdin: str = "",
    files: dict[str, str] | None = None,
    limits: Limits = Limits(),
    isolate: bool = True,
    converse: Callable[[Channel], Any] | None = None,
    site: bool = True,
) -> Execution:
    """Run ``source`` as ``program.py`` in a fresh sandbox; ``files`` are written beside it.

    With ``converse``, the program's stdin and stdout are pipes instead: ``converse(channel)`` runs
    here while the program runs, its result is ``Execution.conversation``, and the program's pipes
    are closed when it returns; a program still running a second later is killed. The wall-clock
    limit holds during the conversation: at the timeout the program is killed and reads end.
    """
    argv = [sys.executable, "-I", "-B", *([] if site else ["-S"]), "program.py"]
    return run_program(
        argv,
        files={"program.py": source, **(files or {})},
        stdin=stdin,
        limits=limits,
        isolate=isolate,
        converse=converse,
        reach=_interpreter_paths(),
    )


def run_program(
    argv: list[str],
    *,
    files: dict[str, str],
    stdin: str = "",
    limits: Limits = Limits(),
    isolate: bool = True,
    converse: Callable[[Channel], Any] | None = None,
    reach: Iterable[str] = (),
    env: dict[str, str] | None = None,
) -> Execution:
    """Run ``argv`` (an absolute executable and its arguments) in a fresh sandbox whose working
    directory holds ``files``; :func:`run_python` is this with the running Python. ``reach``: the
    directories the program's executables live in, opened for it where the way is closed (a harness
    run as root, a toolchain under ``/root``); ``env`` is added to the scrubbed environment.

    >>> run_program(["/bin/sh", "run.sh"], files={"run.sh": "echo $((6 * 7))"}).stdout
    '42\\n'
    """
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="harness-sandbox-")).resolve()
    capture = Path(tempfile.mkdtemp(prefix="harness-capture-"))
    try:
        for name, text in files.items():
            (workdir / name).write_text(text, encoding="utf-8")
        (capture / "stdin").write_text(stdin, encoding="utf-8")
        config = {
            "workdir": str(workdir),
            "argv": list(argv),
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"}
            | (env or {}),
            "limits": {
                "cpu_s": limits.cpu_s,
                "memory_mb": limits.memory_mb,
                "file_mb": limits.file_mb,
                "processes": limits.processes,
            },
            "run_as": list(NOBODY),  # who the program is to the host when the harness runs as root
            "reach": sorted({str(Path(path).resolve()) for path in reach}),
            "isolate": isolate,
        }
        conversation = None
        with (
            (capture / "stdin").open("rb") as stdin_file,
            (capture / "stdout").open("wb") as out,
            (capture / "stderr").open("wb") as err,
        ):
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config)],
                stdin=subprocess.PIPE if converse else stdin_file,
                stdout=subprocess.PIPE if converse else out,
                stderr=err,
                env={},
                start_new_session=True,
                close_fds=True,
            )
            timed_out = False
            if converse:
                timer = threading.Timer(limits.timeout_s, _kill_namespace, [process])
                timer.start()
                try:
                    conversation = converse(Channel(process.stdin, process.stdout))
                finally:
                    timer.cancel()
                    timed_out = time.monotonic() - started >= limits.timeout_s
                    process.stdin.close()  # the program's reads end, and its writes fail
                    process.stdout.close()
                try:  # a moment to exit on its own; after that what it does no longer matters
                    process.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
            else:
                try:
                    process.wait(timeout=limits.timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
            returncode = _stop(process)
        stderr = _tail(capture / "stderr", limits.output_chars + 2000)
        notes = [line[9:] for line in stderr.splitlines() if line.startswith("sandbox: ")]
        stderr = "".join(line for line in stderr.splitlines(True) if not line.startswith("sandbox: "))
        full = max((capture / name).stat().st_size for name in ("stdout", "stderr")) >= limits.file_mb * 2**20
        return Execution(
            status=_status(returncode, timed_out, stderr, full),
            returncode=None if timed_out else returncode,
            stdout=_tail(capture / "stdout", limits.output_chars),
            stderr=stderr[-limits.output_chars :],
            seconds=time.monotonic() - started,
            notes=notes,
            conversation=conversation,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(capture, ignore_errors=True)


def run_many(sources: Iterable[str], *, workers: int | None = None, **kwargs) -> list[Execution]:
    """:func:`run_python` over many programs in parallel (one process each), results in input order."""
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(lambda source: run_python(source, **kwargs), sources))


@cache
def isolation() -> list[str]:
    """What this machine refuses of the isolation described above; empty when all of it applies.

    >>> isinstance(isolation(), list)
    True
    """
    return run_python("pass", limits=Limits(timeout_s=30)).notes
