"""`pintar gateway` for bench/token_e2e, stopped by EOF on stdin as well as by SIGTERM.

    python -m bench.token_e2e_gateway --config GATEWAY.toml

Runs the CLI's own command (`operator_data.cli.gateway_cmd.run`) unchanged; a thread waits
for the benchmark to close this process's stdin (or to die) and then sends SIGTERM to this
process, so a gateway never outlives the benchmark that started it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from operator_data.cli import gateway_cmd


def _stop_on_eof() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.token_e2e_gateway")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    threading.Thread(target=_stop_on_eof, name="stdin-eof", daemon=True).start()
    gateway_cmd.run(config=args.config, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
