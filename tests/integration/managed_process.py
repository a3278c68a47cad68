"""One child process at a time (across restarts) with its log file, shared by the
harness's Edge, fleet's Bridge and nats_cluster's NatsServer.

What it keeps is the difference between how the process ended and what the harness
asked of it: a signal the harness did not send, a non-zero exit status, an exit nobody
asked for or a SIGTERM ignored until the timeout is appended to `problems`, which the
fixtures check after every test.

A subclass sets `name`, `dir` and `log_path`, defines `failure` (the AssertionError
subclass its tests expect), `ready_timeout_s`, `stop_timeout_s`, `missing_hint`,
`_command()` and `_not_ready()` (or its own `wait_ready()`).
"""

import ctypes
import signal
import subprocess
import time
from pathlib import Path


def _die_with_parent():
    """Runs in the child: if pytest itself is killed (ctest timeout), take the child along
    instead of leaving it bound to its ports."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ManagedProcess:
    failure = AssertionError
    ready_timeout_s = 15.0
    stop_timeout_s = 10.0
    missing_hint = "set WSFLEET_BIN_DIR"  # said when the program does not exist

    def __init__(self):
        self.proc = None
        self.problems = []   # crash reports gathered across restarts
        self._sent_signal = None
        self._exit_recorded = False
        self._log_file = None

    # ---- hooks
    def _command(self):
        """The argv of the next start, the program's path first."""
        raise NotImplementedError

    def _not_ready(self):
        """None once the process serves, else why not (shown when wait_ready fails)."""
        raise NotImplementedError

    def _before_sigterm(self):
        """Called by stop() just before SIGTERM goes to a running process."""

    def _stop_status(self, rc):
        """The exit status stop() judges; a server whose clean shutdown is not status 0
        maps it here."""
        return rc

    # ---- lifecycle
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = self._command()
        if not Path(argv[0]).exists():
            raise self.failure(f"{argv[0]} does not exist ({self.missing_hint})")
        # Appended to across restarts; the header tells the runs apart.
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log_file.flush()
        self._sent_signal = None
        self._exit_recorded = False
        self.proc = subprocess.Popen([str(a) for a in argv],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, cwd=str(self.dir),
                                     preexec_fn=_die_with_parent)
        if wait:
            self.wait_ready()
        return self

    def restart(self, hard=False, wait=True):
        """Stops (SIGTERM, or SIGKILL when hard) and starts again with the same conf."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start(wait=wait)

    def wait_ready(self, timeout=None):
        return self._wait_until_ready(self.ready_timeout_s if timeout is None else timeout,
                                      self._not_ready)

    def _wait_until_ready(self, timeout, not_ready):
        """Polls not_ready() (None once ready, else why not) until the deadline. Fails
        with the log tail when the process exits first, or kills it and fails when the
        deadline passes."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self._fail_if_exited("before ready")
            last = not_ready()
            if last is None:
                return self
            time.sleep(0.05)
        self.kill()
        raise self.failure(f"{self.name} not ready within {timeout}s ({last})\n"
                           f"{self.log_tail()}")

    def _fail_if_exited(self, when):
        rc = self.proc.poll() if self.proc else None
        if self.proc is not None and rc is not None:
            self._record_exit(rc, expected=False)
            self._close_log()
            raise self.failure(f"{self.name} exited with {rc} {when}\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        """Fails (with the log) if the process is gone without being told to go."""
        if self.proc is not None and self.proc.poll() is not None and self._sent_signal is None:
            rc = self.proc.returncode
            self._record_exit(rc, expected=False)
            raise self.failure(f"{self.name} died unexpectedly (rc={rc})\n{self.log_tail()}")

    def _record_exit(self, rc, expected):
        if rc is None or self._exit_recorded:
            return
        self._exit_recorded = True
        if rc < 0 and -rc != self._sent_signal:
            self.problems.append(f"{self.name} killed by signal {-rc} "
                                 f"({signal.Signals(-rc).name}) that the test did not send")
        elif rc > 0:
            self.problems.append(f"{self.name} exited with status {rc}"
                                 + ("" if expected else " unexpectedly"))
        elif rc == 0 and not expected:
            self.problems.append(f"{self.name} exited (status 0) without being asked")

    def stop(self, timeout=None):
        """SIGTERM, wait, SIGKILL after the timeout (default: stop_timeout_s). Records a
        crash or a hung shutdown in self.problems."""
        if timeout is None:
            timeout = self.stop_timeout_s
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            if self._sent_signal is None:
                self._record_exit(self.proc.returncode, expected=False)
            self._close_log()
            return
        self._before_sigterm()
        self._sent_signal = signal.SIGTERM
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.problems.append(f"{self.name} ignored SIGTERM for {timeout}s; killed")
            self._sent_signal = signal.SIGKILL
            self.proc.kill()
            rc = self.proc.wait(10)
        self._record_exit(self._stop_status(rc), expected=True)
        self._close_log()

    def kill(self):
        """kill -9, as a host crash would; waits for the process to be gone."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._sent_signal = signal.SIGKILL
        self.proc.kill()
        self.proc.wait(10)
        self._close_log()

    # ---- log
    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log_text().splitlines()
        if not lines:
            return f"(no log at {self.log_path})"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + \
            "\n".join(lines[-n:])
