"""The bench's API subprocess, `python -m api.bench HOST PORT`: the real app over a
server-mode container configured from the environment the bench gives it."""

from __future__ import annotations

import sys


def serve(host: str, port: int) -> None:
    import uvicorn

    from api.main import create_app
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    container = bootstrap(Settings())
    try:
        uvicorn.run(
            create_app(container=container),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        container.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
