"""The sandbox, one hostile behaviour per test: each is contained, ends as a failure or is cut off,
and leaves no process behind and no file outside its directory touched."""

from __future__ import annotations

import os
import socket
import textwrap
import time
from pathlib import Path

import pytest

from harness.sandbox.process import Limits, isolation, run_many, run_python

NO_PID_CAP = "no kernel cap on processes"
namespace_gaps = [note for note in isolation() if not note.startswith(NO_PID_CAP)]
needs_namespaces = pytest.mark.skipif(
    bool(namespace_gaps), reason=f"this kernel refuses the sandbox's namespaces: {namespace_gaps}"
)
needs_pid_cap = pytest.mark.skipif(
    any(note.startswith(NO_PID_CAP) for note in isolation()),
    reason="this kernel has no per-namespace pid_max (Linux < 6.14): a fork bomb under load can fork "
    "thousands of processes before the sandbox's own count stops it, and outlast the run",
)
QUICK = Limits(timeout_s=2, cpu_s=2)  # long enough for any program that ends; a hang costs 2 s


def processes_running(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def processes_left(marker: str, grace_s: float = 3.0) -> list[int]:
    """PIDs matching ``marker`` still there after ``grace_s``: processes the kernel is tearing down
    as a namespace ends can show in /proc for a moment, under load; a survivor stays."""
    deadline = time.monotonic() + grace_s
    while (found := processes_running(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def refused(stderr: str) -> bool:
    """A write outside was stopped: by the read-only mounts, or first by the file's permissions
    (under a harness run as root the program is nobody to the host)."""
    return "Read-only file system" in stderr or "Permission denied" in stderr


def program(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def test_output_and_exit_codes():
    assert run_python("print('hi')").status == "ok"
    ended = run_python("import sys; print('partial'); sys.exit(3)")
    assert (ended.status, ended.returncode, ended.stdout) == ("error", 3, "partial\n")
    raised = run_python("raise ValueError('boom')")
    assert raised.status == "error" and "ValueError: boom" in raised.stderr


def test_stdin_and_files_reach_the_program():
    ran = run_python("print(input()[::-1], open('data.txt').read())", stdin="abc\n", files={"data.txt": "x"})
    assert ran.stdout == "cba x\n"


@pytest.mark.slow
def test_infinite_loop_times_out():
    ran = run_python("while True: pass", limits=QUICK)
    assert ran.status == "timeout" and ran.returncode is None
    assert ran.seconds < QUICK.timeout_s + 5


@pytest.mark.slow
def test_cpu_limit_stops_a_loop_before_the_wall_clock():
    ran = run_python("while True: pass", limits=Limits(timeout_s=30, cpu_s=1))
    assert ran.status == "timeout" and ran.seconds < 20


@pytest.mark.slow
def test_memory_bomb_is_a_memory_failure():
    # The address-space limit ends it (in 0.2 s here); the time limits are far off, so a loaded host
    # slow to hand out pages cannot turn it into a timeout (CI once took over 2 s for 1 GiB).
    limits = Limits(timeout_s=20, cpu_s=10, memory_mb=256)
    ran = run_python("blocks = []\nwhile True: blocks.append(bytearray(2**24))", limits=limits)
    assert ran.status == "memory"


@pytest.mark.slow
def test_huge_output_is_cut_and_kept_small():
    ran = run_python("while True: print('x' * 100_000)", limits=Limits(timeout_s=10, file_mb=1))
    assert ran.status == "output"
    assert len(ran.stdout) <= Limits().output_chars


@pytest.mark.slow
def test_sigterm_handler_does_not_save_a_looping_program():
    source = program(
        """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            pass
        """
    )
    ran = run_python(source, limits=QUICK)
    assert ran.status == "timeout"


def test_non_utf8_output_is_decoded_with_replacements():
    ran = run_python("import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe end')")
    assert ran.status == "ok" and ran.stdout == "ok \ufffd\ufffd end"


@pytest.mark.slow
@needs_namespaces
@needs_pid_cap
def test_fork_bomb_is_contained_and_leaves_no_process():
    source = program(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    )
    ran = run_python(source, limits=QUICK)
    assert ran.status in ("timeout", "error", "crashed")
    assert not processes_left("program.py")


@needs_namespaces
@needs_pid_cap
def test_the_kernel_caps_the_namespace_pids_and_the_program_cannot_lift_it():
    source = program(
        """
        try:
            open("/proc/sys/kernel/pid_max", "w").write("4194304")
        except OSError as error:
            print("refused", type(error).__name__)
        print(open("/proc/sys/kernel/pid_max").read().strip())
        """
    )
    ran = run_python(source, limits=QUICK)
    assert ran.stdout == "refused OSError\n301\n"


@needs_namespaces
def test_kernel_settings_cannot_be_written():
    # Writing back the value it reads: harmless if the sandbox failed, and still a failure here.
    source = program(
        """
        path = "/proc/sys/kernel/printk_ratelimit"
        value = open(path).read()
        try:
            open(path, "w").write(value)
            print("written")
        except OSError as error:
            print("refused", error.errno)
        """
    )
    assert run_python(source, limits=QUICK).stdout == "refused 30\n"  # EROFS


@needs_namespaces
def test_background_subprocess_dies_with_the_program():
    source = program(
        """
        import subprocess
        subprocess.Popen(["sleep", "987654"], start_new_session=True)
        print("started")
        """
    )
    ran = run_python(source, limits=QUICK)
    assert ran.stdout == "started\n"
    assert not processes_left("sleep 987654")


@needs_namespaces
def test_os_system_cannot_write_outside(tmp_path):
    target = tmp_path / "written-by-shell"
    ran = run_python(f"import os; print(os.system('touch {target}'))", limits=QUICK)
    assert ran.stdout.strip() != "0"
    assert not target.exists()


@needs_namespaces
def test_deleting_files_outside_fails_and_they_survive(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    ran = run_python(f"import os, shutil; os.remove({str(keep)!r})", limits=QUICK)
    assert ran.status == "error" and refused(ran.stderr)
    ran = run_python(f"import shutil; shutil.rmtree({str(tmp_path)!r})", limits=QUICK)
    assert ran.status == "error"
    assert keep.read_text() == "precious"


@needs_namespaces
def test_writing_outside_its_directory_fails(tmp_path):
    targets = [tmp_path / "new.txt", Path(__file__).with_name("planted.py"), Path("/tmp/harness-planted")]
    source = "\n".join(f"open({str(t)!r}, 'w').write('x')" for t in targets)
    ran = run_python(source, limits=QUICK)
    assert ran.status == "error" and refused(ran.stderr)
    assert not any(t.exists() for t in targets)


@needs_namespaces
def test_writing_inside_its_directory_works_and_is_removed_afterwards():
    ran = run_python("import os; open('out.txt', 'w').write('x'); print(os.getcwd())", limits=QUICK)
    assert ran.status == "ok"
    assert not Path(ran.stdout.strip()).exists()


@needs_namespaces
def test_network_connection_to_a_listening_server_fails():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    ran = run_python(
        f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)", limits=QUICK
    )
    assert ran.status == "error" and "Error" in ran.stderr
    with pytest.raises(TimeoutError):
        server.accept()  # nothing ever arrived
    server.close()


as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only a harness run as root maps the program to nobody"
)


@needs_namespaces
@as_root
def test_under_a_root_harness_the_program_is_nobody_to_the_host(tmp_path):
    secret = tmp_path / "root-only.txt"
    secret.write_text("secret")
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    source = program(
        f"""
        print(open("/proc/self/uid_map").read().split())
        try:
            print(open({str(secret)!r}).read())
        except OSError as error:
            print("refused", error.errno)
        """
    )
    ran = run_python(source, limits=QUICK)
    assert ran.stdout == "['0', '0', '1']\nrefused 13\n"  # EACCES: the host's root would read it


@needs_namespaces
@as_root
def test_under_a_root_harness_root_only_unix_sockets_refuse_the_program(tmp_path):
    # A Unix socket is reached by its path, across network namespaces: a container daemon's
    # socket would hand a root-mapped program the machine.
    path = tmp_path / "daemon.sock"
    tmp_path.chmod(0o755)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        path.chmod(0o600)
        server.listen(1)
        source = program(
            f"""
            import socket
            try:
                socket.socket(socket.AF_UNIX).connect({str(path)!r})
                print("connected")
            except OSError as error:
                print("refused", error.errno)
            """
        )
        assert run_python(source, limits=QUICK).stdout == "refused 13\n"


@needs_namespaces
def test_killing_every_process_it_can_see_harms_nothing_outside():
    source = program(
        """
        import os, signal
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            print("nobody to kill")
        """
    )
    ran = run_python(source, limits=QUICK)
    assert ran.stdout == "nobody to kill\n"  # it sees only itself; the harness and this test live on


@needs_namespaces
def test_it_sees_only_its_own_processes():
    ran = run_python("import os; print(os.getpid(), sorted(p for p in os.listdir('/proc') if p.isdigit()))")
    assert ran.stdout == "2 ['1', '2']\n"  # 1 is the namespace's reaper


@needs_namespaces
def test_mounts_cannot_be_made_writable_again():
    ran = run_python("import os; print(os.system('mount -o remount,rw / 2>/dev/null'))", limits=QUICK)
    assert ran.stdout.strip() != "0"


@pytest.mark.slow
def test_without_namespaces_limits_and_cleanup_still_hold():
    looped = run_python("while True: pass", limits=QUICK, isolate=False)
    assert looped.status == "timeout"
    source = "import subprocess; subprocess.Popen(['sleep', '987655']); print('started')"
    assert run_python(source, limits=QUICK, isolate=False).stdout == "started\n"
    assert not processes_left("sleep 987655")


@pytest.mark.slow
def test_run_many_keeps_the_input_order():
    sources = [f"print({i} * {i})" for i in range(6)] + ["while True: pass"]
    ran = run_many(sources, limits=QUICK, workers=3)
    assert [r.stdout for r in ran[:6]] == [f"{i * i}\n" for i in range(6)]
    assert ran[6].status == "timeout"
