"""`python -m sandbox --port 8099 --latency-ms 50`: run the provider emulator in the foreground."""

import argparse
import sys

from sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args(argv)

    def announce(base_url: str) -> None:
        # One line on stdout, so a parent process can read the URL (and the real port).
        sys.stdout.write(f"sandbox listening on {base_url}\n")
        sys.stdout.flush()

    serve(args.host, args.port, args.latency_ms, announce)


if __name__ == "__main__":
    main()
