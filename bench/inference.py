"""Serving latency and throughput of the digits model, as ratios to in-process ONNX Runtime.

    python bench/inference.py [--model-repository DIR] [--requests-c1 N] [--requests-c32 N]

Trains the ``digits-lt`` model (``lossserve train --dataset digits-lt --loss
logit_adjusted_cross_entropy``, an MLP; about ten seconds) into a temporary repository, or
takes the latest version of ``--model`` from ``--model-repository DIR`` (never written to).
The ONNX file and its card are copied into a temporary serving repository twice, as models
whose cards differ only in their ``batching`` block:

- ``<model>-batching-on``: the card's own batching block (``max_batch_size`` rows,
  ``max_queue_delay_us``), or the card defaults (64 rows, 500 us) where the card has it off;
- ``<model>-batching-off``: ``max_batch_size`` 1 and ``max_queue_delay_us`` 0, so every
  request runs alone.

``lossserve serve`` then runs as a subprocess on free loopback ports (ONNX Runtime held to
``--threads`` intra-op threads a session, ``LOSSSERVE_MODEL_THREADS``), and for each path,
at concurrency 1 and 32, a fixed number of single-row requests (rows of scikit-learn's
digits, ``features`` FP32 [1, 64]) is timed:

- in-process: an ``onnxruntime.InferenceSession`` on the same ``model.onnx`` with the
  server's session options (intra-op threads, one inter-op thread, no spinning) and the
  execution provider the server reports, plus the card's decision rule (what the server
  adds for the ``decisions`` output);
- OIP gRPC: ``tritonclient.grpc``, unmodified;
- OIP REST binary: ``tritonclient.http`` with ``binary_data=True`` (input and outputs in the
  binary tensor extension);
- OIP REST JSON: ``tritonclient.http`` with ``binary_data=False``.

Every request asks for ``logits``, ``probabilities`` and ``decisions`` and decodes them to
numpy arrays; its latency is the client's wall clock around the whole call. Concurrency is
that many threads, each with its own client, each sending its share of the requests back
to back; throughput is requests over the wall time from the first send to the last answer.
The settings run interleaved in ``--rounds`` rounds (each with its share of the requests,
the order reversed every other round) so that drift on a shared machine spreads over all
of them. ``rows/run`` is the server's ``inference_count / execution_count`` over a setting
(from ``/v2/models/<m>/stats``): how many requests dynamic batching merged per model run.
The first answers of each served setting are checked against in-process ONNX Runtime.

The client and the server share this machine's cores; the last lines say how busy the CPUs
were and how much of their time other processes took. A benchmark, not a test: nothing
here passes or fails. The process imports only ``tritonclient`` for the protocol, never the
server's generated ``inference`` package (both register the protobuf package
``inference``, which one process cannot hold twice).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import _server
import httpx
import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient  # type: ignore[import-untyped]
import tritonclient.http as httpclient  # type: ignore[import-untyped]
from _server import CpuShare, Server

ROOT = Path(__file__).resolve().parents[1]
INPUT = "features"
OUTPUTS = ("logits", "probabilities", "decisions")
BATCHING_OFF = {"max_batch_size": 1, "max_queue_delay_us": 0}
CARD_DEFAULT_BATCHING = {"max_batch_size": 64, "max_queue_delay_us": 500}
CONCURRENCIES = (1, 32)

Answer = tuple[np.ndarray, np.ndarray]
"""(probabilities, decisions) of one request."""
Call = Callable[[np.ndarray], Answer]
Factory = Callable[[], tuple[Call, Callable[[], None]]]
"""Makes one client: its call and its close (run in the thread that uses them)."""


# --- the model repository ------------------------------------------------------------------


def latest_version(directory: Path) -> Path:
    if not directory.is_dir():
        raise SystemExit(f"{directory}: no such model folder")
    versions = sorted(int(c.name) for c in directory.iterdir() if c.is_dir() and c.name.isdigit())
    if not versions:
        raise SystemExit(f"{directory}: no version folder (expected {directory}/<version>/)")
    return directory / str(versions[-1])


def train(repository: Path, name: str) -> Path:
    """Train and export the digits model into ``repository``; its version folder."""
    command = [
        sys.executable,
        "-m",
        "lossserve.cli",
        "train",
        "--dataset",
        "digits-lt",
        "--loss",
        "logit_adjusted_cross_entropy",
        "--name",
        name,
        "--model-repository",
        str(repository),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"training failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    print(f"trained in {time.perf_counter() - start:.1f} s: {done.stdout.strip().splitlines()[0]}")
    return latest_version(repository / name)


def write_version(source: Path, repository: Path, name: str, batching: dict[str, int]) -> None:
    """Copy ``source`` (model.onnx + card.json) to ``<repository>/<name>/1`` with its card
    renamed and its batching block replaced (model.onnx, hence the sha256, is unchanged)."""
    card = json.loads((source / "card.json").read_text())
    card["name"], card["version"] = name, 1
    card["batching"] = {**card.get("batching", {}), **batching}
    target = repository / name / "1"
    target.mkdir(parents=True)
    shutil.copyfile(source / "model.onnx", target / "model.onnx")
    (target / "card.json").write_text(json.dumps(card, indent=2) + "\n")


def batching_on(card: dict[str, Any]) -> dict[str, int]:
    own = card.get("batching") or {}
    size, delay = own.get("max_batch_size", 64), own.get("max_queue_delay_us", 500)
    if size > 1 and delay > 0:
        return {"max_batch_size": size, "max_queue_delay_us": delay}
    return dict(CARD_DEFAULT_BATCHING)


def describe(batching: dict[str, int]) -> str:
    return f"max_batch_size {batching['max_batch_size']}, {batching['max_queue_delay_us']} us"


# --- the server ----------------------------------------------------------------------------


def running_server(
    repository: Path, models: Sequence[str], threads: int
) -> AbstractContextManager[Server]:
    env = {
        **os.environ,
        "LOSSSERVE_DEVICES": '["cpu"]',
        "LOSSSERVE_MODEL_THREADS": str(threads),
        # one frontend: the stats this reads (rows/run) are one process's
        "LOSSSERVE_FRONTENDS": os.environ.get("LOSSSERVE_FRONTENDS", "1"),
        "LOSSSERVE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("LOSSSERVE_ADMIN_TOKEN", None)
    ready = ["/v2/health/ready"] + [f"/v2/models/{m}/ready" for m in models]
    return _server.running_server(["--model-repository", str(repository)], env, ready)


def model_stats(server: Server, model: str) -> tuple[int, int]:
    """(inference_count, execution_count): rows inferred and model runs so far."""
    body = httpx.get(f"http://{server.http_url}/v2/models/{model}/stats", timeout=10).json()
    stats = body["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


# --- the paths: one client each, made in the thread that uses it --------------------------


def session_options(threads: int) -> ort.SessionOptions:
    """The server's session options (service/models/repository.py)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def in_process(session: ort.InferenceSession, offsets: np.ndarray) -> Factory:
    def make() -> tuple[Call, Callable[[], None]]:
        def call(row: np.ndarray) -> Answer:
            logits, probabilities = session.run(["logits", "probabilities"], {INPUT: row})
            return np.asarray(probabilities), np.argmax(logits + offsets, axis=1)

        return call, lambda: None

    return make


def grpc_path(url: str, model: str) -> Factory:
    def make() -> tuple[Call, Callable[[], None]]:
        client = grpcclient.InferenceServerClient(url)
        outputs = [grpcclient.InferRequestedOutput(name) for name in OUTPUTS]

        def call(row: np.ndarray) -> Answer:
            tensor = grpcclient.InferInput(INPUT, list(row.shape), "FP32")
            tensor.set_data_from_numpy(row)
            result = client.infer(model, [tensor], outputs=outputs)
            return result.as_numpy("probabilities"), result.as_numpy("decisions")

        return call, client.close

    return make


def http_path(url: str, model: str, *, binary: bool) -> Factory:
    def make() -> tuple[Call, Callable[[], None]]:
        client = httpclient.InferenceServerClient(url)
        outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS]

        def call(row: np.ndarray) -> Answer:
            tensor = httpclient.InferInput(INPUT, list(row.shape), "FP32")
            tensor.set_data_from_numpy(row, binary_data=binary)
            result = client.infer(model, [tensor], outputs=outputs)
            return result.as_numpy("probabilities"), result.as_numpy("decisions")

        return call, client.close

    return make


@dataclass(frozen=True)
class Target:
    path: str
    batching: str
    """"on", "off", or "-" (in-process)."""
    factory: Factory
    model: str | None = None
    """The served model (None: in-process)."""


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""
    rows: int = 0
    runs: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def measure(
    factory: Factory, concurrency: int, requests: int, rows: list[np.ndarray], warmup: int
) -> Sample:
    """``requests`` calls (rounded up to a multiple of ``concurrency``) from ``concurrency``
    threads, each with its own client, after ``warmup`` untimed calls a thread."""
    per_thread = -(-requests // concurrency)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    ends = [0.0] * concurrency
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)

    def worker(index: int) -> None:
        try:
            call, close = factory()
        except Exception as exc:
            with lock:
                errors.append(f"client: {exc}")
            barrier.abort()
            return
        try:
            for k in range(warmup):
                with contextlib.suppress(Exception):
                    call(rows[(index + k) % len(rows)])
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return
            out = latencies[index]
            for k in range(per_thread):
                row = rows[(index * per_thread + k) % len(rows)]
                start = time.perf_counter()
                try:
                    call(row)
                except Exception as exc:
                    with lock:
                        errors.append(str(exc).splitlines()[0] if str(exc) else repr(exc))
                    continue
                out.append(time.perf_counter() - start)
            ends[index] = time.perf_counter()
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    sample = Sample(latencies=[x for part in latencies for x in part])
    sample.seconds = max((e for e in ends if e), default=start) - start
    sample.errors = len(errors)
    sample.first_error = errors[0] if errors else ""
    return sample


def merge(into: Sample, part: Sample) -> None:
    into.latencies.extend(part.latencies)
    into.seconds += part.seconds
    into.errors += part.errors
    into.first_error = into.first_error or part.first_error
    into.rows += part.rows
    into.runs += part.runs


def check(factory: Factory, reference: Call, rows: list[np.ndarray]) -> str:
    """Largest |probability difference| and decision mismatches against in-process."""
    call, close = factory()
    try:
        worst, mismatches = 0.0, 0
        for row in rows:
            probabilities, decisions = call(row)
            want_p, want_d = reference(row)
            worst = max(worst, float(np.max(np.abs(probabilities - want_p))))
            mismatches += int(np.sum(np.asarray(decisions).reshape(-1) != want_d.reshape(-1)))
    except Exception as exc:
        return f"failed: {str(exc).splitlines()[0] if str(exc) else repr(exc)}"
    finally:
        close()
    return f"max |dp| {worst:.1e}, {mismatches} decision mismatches"


def cpu_share(share: CpuShare) -> str:
    numbers = share.stop()
    if numbers is None:
        return "CPU share unknown"
    busy, others = numbers
    return (
        f"CPUs {busy:.0f}% busy over the measurements; other processes took "
        f"{others:.0f}% of all CPU time ({os.cpu_count()} CPUs)"
    )


# --- the report ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:.3f}"


def ratio(value: float, base: float) -> str:
    if not (base > 0 and np.isfinite(value) and np.isfinite(base)):
        return "-"
    r = value / base
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


def table(results: dict[tuple[Target, int], Sample], targets: list[Target]) -> list[str]:
    lines = [
        "| path | batching | concurrency | requests | p50 ms | p99 ms | req/s "
        "| p50 vs in-process | p99 vs in-process | req/s vs in-process | p50 - in-process ms "
        "| rows/run | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency in CONCURRENCIES:
        base = results[(targets[0], concurrency)]
        b50, b99, bthr = base.percentile(50), base.percentile(99), base.throughput
        for target in targets:
            s = results[(target, concurrency)]
            p50, p99, thr = s.percentile(50), s.percentile(99), s.throughput
            rows_per_run = f"{s.rows / s.runs:.2f}" if s.runs else "-"
            errors = f"{s.errors} ({s.first_error[:60]})" if s.errors else "0"
            lines.append(
                f"| {target.path} | {target.batching} | {concurrency} | {s.requests} "
                f"| {ms(p50)} | {ms(p99)} | {thr:,.0f} | {ratio(p50, b50)} | {ratio(p99, b99)} "
                f"| {ratio(thr, bthr)} | {1e3 * (p50 - b50):+.3f} | {rows_per_run} | {errors} |"
            )
    return lines


def headlines(results: dict[tuple[Target, int], Sample], targets: list[Target]) -> list[str]:
    base = results[(targets[0], 1)].percentile(50)
    lines = []
    for target in targets:
        if target.path != "OIP gRPC":
            continue
        p50 = results[(target, 1)].percentile(50)
        verdict = "yes" if p50 - base <= 1e-3 else "no"
        lines.append(
            f"- gRPC p50 at concurrency 1 within 1 ms of in-process, batching {target.batching}: "
            f"{verdict} ({ms(p50)} ms vs {ms(base)} ms, {1e3 * (p50 - base):+.3f} ms)"
        )
    by_path: dict[str, dict[str, Sample]] = {}
    for target in targets[1:]:
        by_path.setdefault(target.path, {})[target.batching] = results[(target, 32)]
    for path, samples in by_path.items():
        on, off = samples["on"].throughput, samples["off"].throughput
        factor = on / off if off > 0 else float("nan")
        verdict = "yes" if factor >= 3 else "no"
        lines.append(
            f"- {path} at concurrency 32, batching on >= 3x the throughput of batching off: "
            f"{verdict} ({on:,.0f} vs {off:,.0f} req/s, {factor:.2f}x; "
            f"{samples['on'].rows / max(samples['on'].runs, 1):.1f} rows/run on)"
        )
    return lines


# --- main ----------------------------------------------------------------------------------


def digits_rows() -> list[np.ndarray]:
    from sklearn.datasets import load_digits

    data = np.asarray(load_digits().data, dtype=np.float32)
    return [np.ascontiguousarray(data[i : i + 1]) for i in range(len(data))]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="p50/p99 latency and throughput of the digits model: in-process ONNX "
        "Runtime vs OIP gRPC, REST binary and REST JSON (tritonclient), dynamic batching on "
        "and off, at concurrency 1 and 32, in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-repository",
        type=Path,
        help="take the latest version of --model from here instead of training one "
        "(the repository is only read)",
    )
    parser.add_argument("--model", default="digits", help="the model's name")
    parser.add_argument(
        "--requests-c1", type=int, default=2000, help="timed requests a setting at concurrency 1"
    )
    parser.add_argument(
        "--requests-c32", type=int, default=4800, help="timed requests a setting at concurrency 32"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds the requests are split over"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests a client")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="ONNX Runtime intra-op threads, in the server (LOSSSERVE_MODEL_THREADS) and "
        "in-process (0: ORT's default)",
    )
    args = parser.parse_args(argv)
    for name in ("requests_c1", "requests_c32", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.threads < 0:
        parser.error("--warmup and --threads must be at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lossserve-bench-") as tmp:
        work = Path(tmp)
        if args.model_repository is not None:
            source = latest_version(args.model_repository / args.model)
            print(f"model: {source}")
        else:
            source = train(work / "trained", args.model)
        card = json.loads((source / "card.json").read_text())
        on_batching = batching_on(card)
        on_name, off_name = f"{args.model}-batching-on", f"{args.model}-batching-off"
        serving = work / "serving"
        write_version(source, serving, on_name, on_batching)
        write_version(source, serving, off_name, BATCHING_OFF)
        rows = digits_rows()
        offsets = np.zeros(len(card["labels"]), dtype=np.float32)
        if card.get("task") == "multiclass" and card.get("threshold_kind") == "offsets":
            offsets = np.asarray(card["thresholds"], dtype=np.float32)

        with running_server(serving, [on_name, off_name], args.threads) as server:
            metadata = httpx.get(f"http://{server.http_url}/v2/models/{on_name}", timeout=10)
            provider = metadata.json().get("parameters", {}).get("execution_provider", "?")
            if provider not in ort.get_available_providers():
                provider = "CPUExecutionProvider"
            session = ort.InferenceSession(
                str(source / "model.onnx"), session_options(args.threads), providers=[provider]
            )
            reference_call, _ = in_process(session, offsets)()
            targets = [Target("in-process ORT", "-", in_process(session, offsets))]
            paths: list[tuple[str, Callable[[str], Factory]]] = [
                ("OIP gRPC", partial(grpc_path, server.grpc_url)),
                ("OIP REST binary", partial(http_path, server.http_url, binary=True)),
                ("OIP REST JSON", partial(http_path, server.http_url, binary=False)),
            ]
            for path, make in paths:
                for batching, model in (("on", on_name), ("off", off_name)):
                    targets.append(Target(path, batching, make(model), model))

            print(
                f"card {card['name']} v{card['version']} ({card['task']}, {card['loss']}, "
                f"{card['architecture']}); batching on: {describe(on_batching)}; batching off: "
                f"{describe(BATCHING_OFF)}; server provider {provider}, ONNX Runtime "
                f"{ort.__version__}, {args.threads} intra-op thread(s); {os.cpu_count()} CPUs "
                "shared by client and server"
            )
            checks = [
                f"{t.path} ({t.batching}): {check(t.factory, reference_call, rows[:16])}"
                for t in targets[1:]
            ]
            print("check against in-process on 16 rows: " + "; ".join(checks))

            results = {(t, c): Sample() for t in targets for c in CONCURRENCIES}
            settings = [(t, c) for c in CONCURRENCIES for t in targets]
            cpu = CpuShare(server.process.pid, children=True)
            measuring = time.perf_counter()
            for round_ in range(args.rounds):
                for target, concurrency in settings[:: 1 if round_ % 2 == 0 else -1]:
                    total = args.requests_c1 if concurrency == 1 else args.requests_c32
                    share = total // args.rounds + (round_ < total % args.rounds)
                    if share == 0:
                        continue
                    before = model_stats(server, target.model) if target.model else (0, 0)
                    part = measure(target.factory, concurrency, share, rows, args.warmup)
                    if target.model:
                        after = model_stats(server, target.model)
                        part.rows, part.runs = after[0] - before[0], after[1] - before[1]
                    merge(results[(target, concurrency)], part)
            share_line = cpu_share(cpu)
            seconds = time.perf_counter() - measuring

    print()
    print("\n".join(table(results, targets)))
    print()
    print("\n".join(headlines(results, targets)))
    print()
    whole = time.perf_counter() - started
    print(f"{share_line}; measurements {seconds:.0f} s, whole run {whole:.0f} s")
    print(
        "rows/run counts the warm-up requests too; ratios are server / in-process at the same "
        "concurrency (latency: higher is slower; req/s: lower is slower)."
    )


if __name__ == "__main__":
    main()
