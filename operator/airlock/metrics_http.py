"""``GET /metrics`` on its own plain-HTTP port, serving only :data:`airlock.metrics.REGISTRY`.

A separate port keeps scraping independent of the webhook certificate and of the admission
listener's load; Prometheus and the chart's ServiceMonitor point at it. Both processes serve it
(``airlock webhook`` and ``airlock controller``): it lives beside the registry, in neither's room.
"""

from __future__ import annotations

from aiohttp import web

from airlock import metrics

__all__ = ["bound_port", "metrics_app", "start_metrics_server"]


async def _metrics(_request: web.Request) -> web.Response:
    # generate_latest over a few hundred series takes well under a millisecond: inline is fine.
    return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE})


def metrics_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    return app


async def start_metrics_server(host: str, port: int) -> web.AppRunner:
    """Start serving ``/metrics``; the caller stops it with ``await runner.cleanup()``."""
    runner = web.AppRunner(metrics_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started runner listens on (useful when it was started on port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("runner is not listening on a TCP port")
