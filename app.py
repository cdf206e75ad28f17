"""Start the Ampere Q&A web page and its HTTP API.

    python app.py [--host 127.0.0.1] [--port 7860] [--index index] [--corpus corpus]

The same as ``ampere-qa serve`` (both run :func:`ampere_qa.web.serve`), from a plain checkout
too: builds the index from ``corpus/`` first when it is missing, and prints
``ampere-qa ready on http://HOST:PORT`` once the page accepts connections.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # runs from a plain checkout too


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ampere Q&A web page and HTTP API (/ask).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=_port, default=7860, help="port to listen on")
    parser.add_argument("--index", default=str(ROOT / "index"), help="index folder")
    parser.add_argument("--corpus", default=str(ROOT / "corpus"),
                        help="corpus folder, used only when the index must be built")
    args = parser.parse_args(argv)

    from ampere_qa.errors import AmpereError
    from ampere_qa.web import serve

    try:
        serve(args.index, host=args.host, port=args.port, corpus_dir=args.corpus)
    except AmpereError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # e.g. the port is taken: one line, like the CLI
        if os.environ.get("AMPERE_QA_DEBUG"):
            import traceback

            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
