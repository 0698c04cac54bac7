"""Training as a child process: start, stop, resume, watch; and the TensorBoard server.

The Train tab never trains in the web server's process. It writes `logs/<exp>/train.pending.json` and starts
    python -m voiceapp --root ROOT --device DEV train --config logs/<exp>/train.pending.json
The child moves that file to `logs/<exp>/train.json` once its model is built and the checkpoints are read, so a
Start that fails before then leaves the saved settings as they were.
(torchrun with one process per GPU when several are visible) in a new process group, with stdout/stderr in
`logs/<exp>/train.log` and {pid, started, command} in `logs/<exp>/train.pid`. The child reports through
`logs/<exp>/events.jsonl`; `run_status` turns that file plus the process state into what the tab shows, including
a readable message when the child crashed (CUDA out of memory -> lower the batch size).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.manifests import FeatureManifest
from voiceapp.train.config import TrainConfig
from voiceapp.train.distributed import launch_command, wanted_processes
from voiceapp.train.events import EventLog, last_run, read_events
from voiceapp.workspace import ExperimentDir, Workspace, read_json, write_json_atomic

log = logging.getLogger(__name__)

_LOG_TAIL_BYTES = 20_000


@dataclass
class RunStatus:
    """What the tab shows about one experiment's training."""

    state: str                       # "idle" | "running" | "stopping" | "done" | "stopped" | "failed"
    message: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    eta_s: float | None = None
    best_epoch: int | None = None
    best_mel_l1: float | None = None
    last_mel_l1: float | None = None
    pretrained: str = ""
    voice_models: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state in ("running", "stopping")


def _new_group_kwargs() -> dict[str, Any]:
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _pid_alive(pid: int) -> bool:
    """True when `pid` runs and (on Linux) is a Voiceapp training process, not a recycled pid."""
    if os.name == "nt" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            if stat.read_text().split(")")[-1].split()[0] == "Z":
                return False
            return b"voiceapp" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    return True


class TrainingRunner:
    """Starts and watches training child processes, one per experiment. The app creates one per session."""

    def __init__(self, workspace: Workspace, device: str = "cpu") -> None:
        self.workspace, self.device = workspace, device
        self._procs: dict[str, subprocess.Popen] = {}
        self._tensorboard: tuple[subprocess.Popen, str, str] | None = None

    # ------------------------------------------------------------ start / stop
    def is_running(self, experiment: str) -> bool:
        exp = self.workspace.experiment(experiment)
        proc = self._procs.get(exp.name)
        if proc is not None:
            return proc.poll() is None
        info = read_json(exp.train_pid_path) or {}
        return bool(info.get("pid")) and _pid_alive(int(info["pid"]))

    def exit_code(self, experiment: str) -> int | None:
        proc = self._procs.get(self.workspace.experiment(experiment).name)
        return proc.poll() if proc is not None else None

    def start(self, cfg: TrainConfig, stop_wait_s: float = 30.0) -> int:
        """Write the settings (train.pending.json; the child makes them train.json once its model is built) and
        start the child; returns its pid. Refuses while this experiment trains (after waiting up to `stop_wait_s`
        for a run that is stopping), and refuses a model that does not fit the experiment's checkpoints before
        anything is written."""
        exp = self.workspace.experiment(cfg.experiment)
        if self.is_stopping(exp.name):
            self.wait_stopped(exp.name, stop_wait_s)
        if self.is_running(exp.name):
            raise InputError(f"{exp.name} is already training. Stop it first, or pick another experiment name.")
        if not exp.features_manifest_path.exists():
            raise MissingArtifactError(f"No features in {exp.features_dir}. Run 1. Extract features for "
                                       f"{exp.name} first.")
        manifest = FeatureManifest.read(exp)
        check_against_features(cfg, manifest)
        check_against_checkpoints(cfg, exp, manifest)
        # train.json keeps the saved settings until the child has built its model and read the checkpoints
        # (train/cli.py moves this file there then): a Start that fails on the way changes nothing
        write_json_atomic(exp.pending_train_config_path, cfg.to_json())
        processes = wanted_processes(self.device, cfg.gpus) if cfg.engine == "rvc" else 1   # quick: one process
        command = launch_command(exp.pending_train_config_path, self.workspace.root, self.device, processes)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
        if os.name == "nt":
            env.setdefault("USE_LIBUV", "0")   # torchrun's store on Windows wheels built without libuv
        exp.root.mkdir(parents=True, exist_ok=True)
        with open(exp.train_log_path, "ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(Path(__file__).resolve().parents[2]), env=env, **_new_group_kwargs())
        self._procs[exp.name] = proc
        write_json_atomic(exp.train_pid_path, {"pid": proc.pid, "started": time.time(), "command": command})
        log.info("training %s started (pid %d)", exp.name, proc.pid)
        return proc.pid

    def resume(self, experiment: str, **changes: Any) -> int:
        """Start again from the saved train.json (e.g. with more epochs or a smaller batch); the run resumes
        from the latest checkpoint. Without one, from the settings of a Start stopped before it got going."""
        exp = self.workspace.experiment(experiment)
        saved = exp.train_config_path
        if not saved.exists() and exp.pending_train_config_path.exists():
            saved = exp.pending_train_config_path   # stopped before its first run got going: nothing else saved
        cfg = TrainConfig.load(saved)
        return self.start(cfg.replace(**changes) if changes else cfg)

    def is_stopping(self, experiment: str) -> bool:
        """Stop was asked and the child has not ended yet (it finishes its step and saves)."""
        exp = self.workspace.experiment(experiment)
        return bool((read_json(exp.train_pid_path) or {}).get("stop_requested")) and self.is_running(exp.name)

    def wait_stopped(self, experiment: str, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the child to end; True when it has."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.is_running(experiment):
            time.sleep(0.2)
        return not self.is_running(experiment)

    def stop(self, experiment: str, timeout_s: float = 20.0, wait: bool = True) -> bool:
        """Ask the child (its whole process group) to stop; kill it if it has not stopped after `timeout_s`.
        `wait=False` returns at once (the status says "stopping" until the child has ended)."""
        exp = self.workspace.experiment(experiment)
        proc = self._procs.get(exp.name)
        info = read_json(exp.train_pid_path) or {}
        pid = proc.pid if proc is not None else int(info.get("pid") or 0)
        if not pid or not self.is_running(exp.name):
            return False
        requested = time.time()
        if info.get("pid") == pid:
            write_json_atomic(exp.train_pid_path, {**info, "stop_requested": requested})
        _signal_group(pid, signal.SIGTERM)
        if not wait:
            threading.Thread(target=self._finish_stop, args=(exp, pid, proc, requested, timeout_s), daemon=True,
                             name=f"stop-{exp.name}").start()
            return True
        self._finish_stop(exp, pid, proc, requested, timeout_s)
        return True

    def _finish_stop(self, exp: ExperimentDir, pid: int, proc: subprocess.Popen | None, requested: float,
                     timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.is_running(exp.name):
            time.sleep(0.2)
        if self.is_running(exp.name):
            _signal_group(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            if proc is not None:
                proc.wait(timeout=10)
            EventLog(exp.events_path).write("stopped", message=f"Stopped (the process did not finish its step within "
                                                               f"{timeout_s:.0f} s and was ended).")
        elif not any(e.get("time", 0) >= requested for e in read_events(exp.events_path, {"stopped", "done", "error"})):
            # The signal ended the child before it could say so (e.g. while it was still starting up).
            EventLog(exp.events_path).write("stopped", message="Stopped. Resume continues from the last save.")

    # ------------------------------------------------------------ status
    def status(self, experiment: str) -> RunStatus:
        exp = self.workspace.experiment(experiment)
        info = read_json(exp.train_pid_path) or {}
        running = self.is_running(exp.name)
        status = run_status(exp, running, self.exit_code(exp.name), info.get("started"))
        if running and info.get("stop_requested") and status.state == "running":
            unit = "minute" if status.message.startswith("Training: minute") else "epoch"
            status.state = "stopping"
            status.message = (f"Stopping… (finishing the current step and saving; {unit} {status.epoch}, step "
                              f"{status.step}). Resume is possible once it has stopped.")
        return status

    # ------------------------------------------------------------ TensorBoard
    def start_tensorboard(self, logdir: Path) -> str:
        """Start (or reuse) `tensorboard --logdir LOGDIR --host 127.0.0.1` on a free port; returns its URL."""
        if self._tensorboard is not None:
            proc, url, current = self._tensorboard
            if proc.poll() is None and current == str(logdir):
                return url
            self.stop_tensorboard()
        port = free_port()
        exe = shutil.which("tensorboard", path=str(Path(sys.executable).parent))
        command = [exe] if exe else [sys.executable, "-m", "tensorboard.main"]
        command += ["--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, **_new_group_kwargs())
        url = f"http://127.0.0.1:{port}/"
        self._tensorboard = (proc, url, str(logdir))
        return url

    def stop_tensorboard(self) -> None:
        if self._tensorboard is not None:
            proc = self._tensorboard[0]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self._tensorboard = None

    def close(self) -> None:
        self.stop_tensorboard()


def check_against_features(cfg: TrainConfig, manifest: FeatureManifest) -> None:
    """Refuse at once (not minutes later in the child) a rate or version that the features cannot train."""
    from voiceapp.train.data import unfinished_features   # (torch is imported only when training starts)

    unfinished_features(cfg.experiment, manifest)
    rate, version = manifest.sample_rate, manifest.version
    if cfg.sample_rate and rate and int(rate) != int(cfg.sample_rate):
        raise ConfigError(f"The features of {cfg.experiment} come from {rate} Hz clips; choose {rate} as the sample "
                          f"rate, or prepare the dataset at {cfg.sample_rate} Hz and extract features again.")
    if cfg.version and version and version != cfg.version:
        raise ConfigError(f"The features of {cfg.experiment} were extracted for a {version} model; choose {version}, "
                          f"or extract features again for {cfg.version}.")


# What fixes the shape of the networks: a checkpoint of one cannot continue as another.
ARCHITECTURE_FIELDS: tuple[str, ...] = ("engine", "preset", "version", "sample_rate", "use_f0")


def has_checkpoints(exp: ExperimentDir) -> bool:
    return any(exp.checkpoints_dir.glob(pattern) for pattern in ("G_*.pth", "D_*.pth", "Q_*.pth"))


def model_phrase(cfg: TrainConfig, manifest: FeatureManifest | None = None) -> str:
    """"a light v2 40000 Hz rvc model" / "a quick model"."""
    if cfg.engine != "rvc":
        return f"a {cfg.engine} model"
    rate = cfg.sample_rate or (manifest.sample_rate if manifest else None)
    version = cfg.version or (manifest.version if manifest else None)
    pitch = "" if cfg.use_f0 else " without pitch"
    return f"a {cfg.preset} {version or ''} {rate or ''} Hz rvc model{pitch}".replace("  ", " ")


def architecture_changes(saved: TrainConfig, cfg: TrainConfig,
                         manifest: FeatureManifest | None = None) -> list[tuple[str, Any, Any]]:
    """(field, saved, asked) for each field that fixes the networks' shapes and differs."""
    def value(c: TrainConfig, name: str) -> Any:
        found = getattr(c, name)
        if found is None and manifest is not None and name in ("sample_rate", "version"):
            found = manifest.sample_rate if name == "sample_rate" else manifest.version
        return int(found) if name == "sample_rate" and found else found

    fields = ARCHITECTURE_FIELDS if "rvc" in (saved.engine, cfg.engine) and saved.engine == cfg.engine \
        else ("engine",)
    return [(f, value(saved, f), value(cfg, f)) for f in fields if value(saved, f) != value(cfg, f)]


def check_against_checkpoints(cfg: TrainConfig, exp: ExperimentDir, manifest: FeatureManifest | None = None) -> None:
    """Refuse, before train.json is written, a model that cannot continue from the experiment's checkpoints."""
    if not exp.train_config_path.exists() or not has_checkpoints(exp):
        return
    try:
        saved = TrainConfig.load(exp.train_config_path)
    except (ConfigError, InputError):
        return   # an unreadable train.json: the child says what is wrong with it
    changes = architecture_changes(saved, cfg, manifest)
    if changes:
        listed = ", ".join(f"{name} {old} → {new}" for name, old, new in changes)
        raise ConfigError(f"{exp.name} already has checkpoints of {model_phrase(saved, manifest)}; this Start asks "
                          f"for {model_phrase(cfg, manifest)} ({listed}), which cannot continue from them. Nothing "
                          f"was changed. Pick {exp.name} again to load its saved settings and press Resume, or type a "
                          f"new experiment name to train this model from scratch.")


def _signal_group(pid: int, sig: int) -> None:
    try:
        if os.name == "nt":
            os.kill(pid, signal.CTRL_BREAK_EVENT if sig == signal.SIGTERM else sig)
        else:
            os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(exp: ExperimentDir, limit: int = _LOG_TAIL_BYTES) -> str:
    path = exp.train_log_path
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - limit))
        return handle.read().decode("utf-8", errors="replace")


def crash_message(exp: ExperimentDir, exit_code: int | None, batch_size: int) -> str:
    """A readable sentence for a child that ended without saying why (killed, or crashed hard)."""
    tail = log_tail(exp)
    if "out of memory" in tail.lower():
        return (f"Training ran out of GPU memory at batch size {batch_size}. Resume with a smaller batch size "
                f"(for example {max(1, batch_size // 2)}); it continues from the last save.")
    if exit_code in (-9, 137):
        return ("The training process was killed (exit code %s), often because the computer ran out of memory. "
                "Resume with a smaller batch size; it continues from the last save." % exit_code)
    last = [line.strip() for line in tail.splitlines() if line.strip() and not line.startswith("===")][-1:]
    if exit_code is None and not last:
        return ("The training process is no longer running (it was killed, or the computer restarted). "
                "Resume continues from the last save.")
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    said = f" Last output: {last[0][:300]!r}." if last else ""
    return (f"The training process ended unexpectedly{code}.{said} Details in {exp.train_log_path}. "
            f"Resume continues from the last save.")


def run_status(exp: ExperimentDir, running: bool, exit_code: int | None = None,
               started: float | None = None) -> RunStatus:
    """The state of `exp`'s latest run from its events and whether its process is alive (started at `started`)."""
    events = last_run(read_events(exp.events_path))
    if running and events and started and events[-1].get("time", 0) < started and \
            not any(e["type"] == "start" and e.get("time", 0) >= started for e in events):
        events = []                      # a new child is still loading; the events are the previous run's
    if not events:
        return RunStatus("running" if running else "idle",
                         "Starting (loading data and models)..." if running else "Not trained yet.")
    start = next((e for e in events if e["type"] == "start"), {})
    unit = "minute" if start.get("engine") == "quick" else "epoch"   # quick trains on a time budget
    status = RunStatus("running", "", epochs=int(start.get("epochs", 0)), pretrained=start.get("pretrained", ""),
                       epoch=int(start.get("start_epoch", 1)) - 1, step=int(start.get("start_step", 0)))
    for event in events:
        kind = event["type"]
        if kind == "step":
            status.step, status.eta_s = event["step"], event.get("eta_s")
        elif kind in ("epoch", "save", "resume"):
            status.epoch, status.step = event["epoch"], event["step"]
        elif kind == "validation":
            status.last_mel_l1, status.best_epoch = event["mel_l1"], event["best_epoch"]
            status.best_mel_l1 = event["best_mel_l1"]
        elif kind == "done":
            status.epoch, status.step = event["epoch"], event["step"]
            status.voice_models = list(event.get("voice_models", []))
    final = events[-1]
    best = (f" Best validation epoch: {status.best_epoch} (mel L1 {status.best_mel_l1:.3f})."
            if status.best_epoch else "")
    if final["type"] == "done":
        status.state = "done"
        status.message = f"Done: {unit} {status.epoch}, step {status.step}.{best} Voice models: " + \
            ", ".join(Path(p).name for p in status.voice_models)
    elif final["type"] == "error":
        status.state = "failed"
        status.message = f"Training failed: {final.get('message', '')} {final.get('advice', '')}".strip()
    elif final["type"] == "stopped":
        status.state = "stopped"
        status.message = f"Stopped at {unit} {status.epoch}, step {status.step}. Resume continues from the last save."
    elif running:
        eta = f", about {_duration(status.eta_s)} left" if status.eta_s else ""
        status.message = f"Training: {unit} {status.epoch}/{status.epochs}, step {status.step}{eta}.{best}"
    else:
        status.state = "failed"
        status.message = crash_message(exp, exit_code, int(start.get("config", {}).get("batch_size", 4)))
    if best and status.state != "done":
        status.message = status.message if best in status.message else status.message + best
    return status


def _duration(seconds: float | None) -> str:
    seconds = int(seconds or 0)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
