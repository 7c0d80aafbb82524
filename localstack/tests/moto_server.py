"""Runs moto's server for the queue-semantics tests: an independent SQS to check rustack-sqs against.

Binds 127.0.0.1 on a free port, prints that port on one line of stdout, then serves until its standard
input closes, which happens when the test process that started it ends, however it ends.
"""

import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    # One line per request would drown the test output; errors still reach stderr.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    # Blocks until the parent closes our stdin (or dies); nothing is ever written to it.
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
