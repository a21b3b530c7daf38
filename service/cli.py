"""The ``lossserve`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from .api.rest import create_app
from .core.state import ServiceState
from .observability import configure_logging
from .settings import Settings

__all__ = ["main", "serve"]

log = logging.getLogger("lossserve")


async def serve(settings: Settings) -> None:
    """Serve HTTP and gRPC from one process until SIGINT/SIGTERM."""
    from .api.grpc import create_grpc_server

    state = ServiceState.create(settings)
    await state.start()
    app = create_app(state)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    http = uvicorn.Server(config)
    grpc_server = create_grpc_server(state)
    grpc_port = grpc_server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await grpc_server.start()
    log.info(
        "serving",
        extra={"host": settings.host, "http_port": settings.http_port, "grpc_port": grpc_port},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(http.serve())
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    await grpc_server.stop(grace=5)
    await http_task
    await state.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the REST and gRPC APIs")
    run.add_argument("--host", default=None)
    run.add_argument("--http-port", type=int, default=None)
    run.add_argument("--grpc-port", type=int, default=None)
    run.add_argument("--model-repository", type=Path, default=None)
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "http_port": args.http_port,
            "grpc_port": args.grpc_port,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
